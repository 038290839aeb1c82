"""The models shipped in resources/models: complete, documented, and editing a real face as promised."""

from __future__ import annotations

import dlib
import numpy as np
import pytest

from diat_studio.core.colour import mean_delta_e
from diat_studio.core.dlib_models import dlib_model_path
from diat_studio.core.faces import Face
from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.paths import bundled_models_dir
from diat_studio.core.pipeline import edit_photo
from diat_studio.core.regions import RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.conftest import REPO_ROOT
from trainer.quality import QUALITY_BAR

QUALITY_KEYS = tuple(target.key for target in QUALITY_BAR)
#: The sample photo (the astronaut) already has what these edits make: a woman, her mouth open in a smile,
#: no glasses. Applied to her they must change little (the quality issue: mean ΔE ≤ 3 on such faces).
ALREADY_THERE = {"open-mouth", "male-to-female", "remove-eyeglasses"}

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
    assert entry.onnx_bytes() <= 20_000_000
    for key in ("attribute_success_rate", "identity_kept_rate", "heldout_faces", *QUALITY_KEYS):
        assert key in manifest.metrics, f"{name}: manifest lacks the evaluation metric {key}"
    # the verdict of the quality bar is what the app shows: experimental exactly when a target is missed
    missed = manifest.metrics.get("quality_bar_missed")
    assert missed is not None, f"{name}: evaluated without --quality-bar"
    assert entry.experimental == bool(missed)
    assert "non-commercial" in manifest.licence
    card = REPO_ROOT / "docs" / "models" / f"{name}.md"
    assert card.is_file() and (card.with_suffix(".png")).is_file()
    text = card.read_text()
    assert f"{100 * manifest.metrics['attribute_success_rate']:.1f}%" in text  # the card shows these numbers
    assert ("**experimental**" in text) == entry.experimental


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_model_edits_the_astronaut(
    registry: ModelRegistry, name: str, astronaut: np.ndarray, astronaut_face: Face, face_descriptor
) -> None:
    model = load_attribute_model(registry.get(name), Device.CPU)
    manifest = model.manifest
    result = edit_photo(astronaut, [astronaut_face], model)
    region = manifest.region if manifest.kind == "local" else RegionKind.FACE
    # the model's own region: its margin is part of the model (remove eyeglasses: 0.45 eye distances)
    polygon = region_polygon(region, astronaut_face.landmarks, manifest.region_margin)
    support = polygon.rasterise(512, 512, 1).full(512, 512) > 0
    diff = np.abs(result.pixels.astype(int) - astronaut.astype(int)).max(axis=2)
    assert not diff[~support].any(), "pixels outside the edited region changed"
    if name in ALREADY_THERE:
        change = mean_delta_e(astronaut, result.pixels, support.astype(np.float32))
        # the bar (ΔE ≤ 3) for a model that passes it; an experimental one that misses it must still not
        # repaint her the way the replaced models did (ΔE 18-21 on such faces)
        bound = 10.0 if "already_target_delta_e" in manifest.metrics["quality_bar_missed"] else 3.0
        assert change <= bound, f"{name} repaints a face that already has its attribute (ΔE {change:.1f})"
    else:
        assert diff[support].mean() > 1.0, "the edit did (almost) nothing"
    # still the same person for dlib's own face recogniser
    distance = np.linalg.norm(
        face_descriptor(result.pixels, astronaut_face) - face_descriptor(astronaut, astronaut_face)
    )
    assert distance < 0.6
