"""The one resource lookup: source checkout, frozen bundle, explicit override; per-user folders."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from diat_studio.core import paths
from tests.conftest import REPO_ROOT


def test_source_checkout_finds_the_bundled_resources() -> None:
    assert paths.resources_root() == REPO_ROOT / "resources"
    assert paths.resource_path("sample", "astronaut.jpg").is_file()
    assert paths.resource_path("icons", "diat-studio.svg").is_file()
    assert paths.bundled_models_dir() == REPO_ROOT / "resources" / "models"


def test_frozen_bundle_uses_its_own_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert paths.resources_root() == tmp_path / "resources"
    assert paths.resource_path("sample", "x.jpg") == tmp_path / "resources" / "sample" / "x.jpg"


def test_override_and_user_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIAT_STUDIO_RESOURCES", str(tmp_path / "res"))
    assert paths.resources_root() == tmp_path / "res"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if sys.platform.startswith("linux"):
        assert paths.user_models_dir() == tmp_path / "xdg" / "diat-studio" / "models"
