"""The models shipped in resources/models: complete, documented, and editing a real face as promised."""

from __future__ import annotations

import dlib
import numpy as np
import pytest

from diat_studio.core.dlib_models import dlib_model_path
from diat_studio.core.faces import Face
from diat_studio.core.inference import Device, GlobalEnhancer, LocalEnhancer, load_attribute_model
from diat_studio.core.paths import bundled_models_dir
from diat_studio.core.pipeline import edit_photo
from diat_studio.core.regions import RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.conftest import REPO_ROOT

#: The paper's five edits (the bundled-models issue); every one must ship.
PAPER_EDITS = {"remove-eyeglasses", "open-mouth", "close-mouth", "male-to-female", "old-to-young"}
BUNDLED = sorted(p.name for p in bundled_models_dir().iterdir() if (p / "manifest.json").is_file())


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry([bundled_models_dir()])


@pytest.fixture(scope="module")
def face_descriptor():
    network = dlib_model_path("dlib_face_recognition_resnet_model_v1.dat")
    recogniser = dlib.face_recognition_model_v1(str(network))
    shapes = dlib.shape_predictor(str(dlib_model_path("shape_predictor_68_face_landmarks.dat")))

    def describe(pixels: np.ndarray, face: Face) -> np.ndarray:
        box = face.box
        shape = shapes(pixels, dlib.rectangle(int(box.left), int(box.top), int(box.right), int(box.bottom)))
        return np.array(recogniser.compute_face_descriptor(pixels, shape))

    return describe


def test_every_paper_edit_is_bundled(registry: ModelRegistry) -> None:
    available = {entry.name for entry in registry.available()}
    assert available >= PAPER_EDITS, f"missing: {sorted(PAPER_EDITS - available)}"
    assert not [entry for entry in registry.entries if not entry.available]


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_is_documented_and_small(registry: ModelRegistry, name: str) -> None:
    entry = registry.get(name)
    manifest = entry.manifest
    assert manifest is not None
    assert manifest.enhancer is not None, "every shipped edit has its enhancement network"
    assert entry.onnx_bytes() <= 20_000_000
    for key in ("attribute_success_rate", "identity_kept_rate", "heldout_faces"):
        assert key in manifest.metrics, f"{name}: manifest lacks the evaluation metric {key}"
    # DIAT-A is the default; a global edit may use DIAT where its card says why
    assert manifest.training["variant"] == "diat-a" or manifest.kind == "global"
    assert "non-commercial" in manifest.licence
    card = REPO_ROOT / "docs" / "models" / f"{name}.md"
    assert card.is_file() and (card.with_suffix(".png")).is_file()
    text = card.read_text()
    assert f"{100 * manifest.metrics['attribute_success_rate']:.1f}%" in text  # the card shows these numbers


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_edits_the_astronaut(
    registry: ModelRegistry, name: str, astronaut: np.ndarray, astronaut_face: Face, face_descriptor
) -> None:
    model = load_attribute_model(registry.get(name), Device.CPU)
    manifest = model.manifest
    result = edit_photo(astronaut, [astronaut_face], model)
    region = manifest.region if manifest.kind == "local" else RegionKind.FACE
    support = region_polygon(region, astronaut_face.landmarks).rasterise(512, 512, 1).full(512, 512) > 0
    diff = np.abs(result.pixels.astype(int) - astronaut.astype(int)).max(axis=2)
    assert not diff[~support].any(), "pixels outside the edited region changed"
    assert diff[support].mean() > 2.0, "the edit did (almost) nothing"
    expected = LocalEnhancer if manifest.kind == "local" else GlobalEnhancer
    assert isinstance(model.enhancer, expected)
    # still the same person for dlib's own face recogniser
    distance = np.linalg.norm(
        face_descriptor(result.pixels, astronaut_face) - face_descriptor(astronaut, astronaut_face)
    )
    assert distance < 0.6
