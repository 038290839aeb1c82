"""Shared fixtures. Qt always runs offscreen in tests."""

from __future__ import annotations

import os
import signal
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np
import pytest

from diat_studio.core.faces import Face, FaceDetector
from diat_studio.core.regions import RegionKind
from tests import onnx_fixtures

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real face photo (NASA, public domain), 512×512 RGB."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


@pytest.fixture(scope="session")
def detector() -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="session")
def astronaut_face(astronaut: np.ndarray, detector: FaceDetector) -> Face:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    return faces[0]


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with one local (mouth) and one global fixture model."""
    root = tmp_path_factory.mktemp("models")
    onnx_fixtures.model_folder(root, "redden-mouth", "local", RegionKind.MOUTH)
    onnx_fixtures.model_folder(root, "redden-face", "global", RegionKind.FACE)
    return root


@pytest.fixture(scope="session")
def experimental_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models folder with one experimental model: `redden-eyes`, local (eyes), usable."""
    root = tmp_path_factory.mktemp("experimental-models")
    onnx_fixtures.model_folder(root, "redden-eyes", "local", RegionKind.EYES, experimental=True)
    return root


@pytest.fixture()
def isolated_user_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the per-user data folder at an empty temporary folder."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def shared_data(*parts: str) -> Path:
    """A folder of ../shared/data, or skip the test when this checkout has none."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"{path} is not present (real face data lives outside the repository)")
    return path


def sigint_as_in_a_terminal() -> None:
    """SIGINT's default disposition in the child, as a terminal's Ctrl-C finds it: a test run started in
    the background (`make test &`) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
