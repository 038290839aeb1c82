"""Every number in a manifest is validated; a NaN or infinite model output is refused (issue 12, item 13).

A NaN `value_range` used to be accepted and painted the mouth black; a 16384 px template tried to allocate
3 GiB per photo.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from diat_studio.core.errors import ModelError
from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.manifest import MANIFEST_FILE, ManifestError, ModelManifest
from diat_studio.core.registry import ModelRegistry
from tests import onnx_fixtures
from tests.core.manifest_edits import fixture_manifest, with_value

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize(
    "value",
    [
        [NAN, 1.0],
        [-1.0, NAN],
        [-INF, 1.0],
        [0.0, INF],
        [1.0, 1.0],
        [1.0, -1.0],
        [True, 2],
        ["0", 1],
        [None, 1],
        [-1e308, 1e308],
        [0.0, 1e-9],
        [0.0, 1e6],
        [0.0],
        [0.0, 1.0, 2.0],
        "0-1",
        {"low": 0, "high": 1},
    ],
)
def test_a_bad_value_range_is_refused(models_root: Path, value: object) -> None:
    with pytest.raises(ManifestError, match=r"manifest: value_range must be"):
        ModelManifest.from_dict(with_value(fixture_manifest(models_root), "value_range", value))


@pytest.mark.parametrize("value", [[0, 1], [0.0, 255.0], [-1, 1], [-128, 127]])
def test_usual_value_ranges_are_accepted(models_root: Path, value: list) -> None:
    manifest = ModelManifest.from_dict(with_value(fixture_manifest(models_root), "value_range", value))
    assert manifest.value_range == (float(value[0]), float(value[1]))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("template.size", 16384, "size must be a whole number of pixels from 32 to 1024"),
        ("template.size", 1025, "from 32 to 1024"),
        ("template.size", 31, "from 32 to 1024"),
        ("template.size", 0, "from 32 to 1024"),
        ("template.size", -128, "from 32 to 1024"),
        ("template.size", 128.5, "from 32 to 1024"),
        ("template.size", 128.0, "from 32 to 1024"),
        ("template.size", True, "from 32 to 1024"),
        ("template.size", "128", "from 32 to 1024"),
        ("template.size", INF, "from 32 to 1024"),
        ("template.size", NAN, "from 32 to 1024"),
        ("template.eye_distance", NAN, "template.eye_distance must be a finite number"),
        ("template.eye_distance", INF, "template.eye_distance must be a finite number"),
        ("template.eye_distance", "0.25", "template.eye_distance must be a number"),
        ("template.eye_distance", 5.0, "implausible template placement"),
        ("template.eye_center_y", -INF, "template.eye_center_y must be a finite number"),
        ("template.eye_center_y", False, "template.eye_center_y must be a number"),
        ("template.eye_center_y", 0.0, "implausible template placement"),
        ("template.name", 7, "'template.name' must be a str"),
    ],
)
def test_template_numbers_are_validated(models_root: Path, path: str, value: object, message: str) -> None:
    with pytest.raises(ManifestError, match=r"manifest: ") as caught:
        ModelManifest.from_dict(with_value(fixture_manifest(models_root), path, value))
    assert message in str(caught.value)


@pytest.mark.parametrize("size", [32, 1024])
def test_template_size_bounds_are_inclusive(models_root: Path, size: int) -> None:
    assert (
        ModelManifest.from_dict(with_value(fixture_manifest(models_root), "template.size", size)).crop_size
        == size
    )


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("metrics.attribute_success_rate", NAN, "metrics.attribute_success_rate must be a finite number"),
        ("metrics.identity_kept_rate", "high", "metrics.identity_kept_rate must be a number"),
        ("metrics.psnr_outside_mask_db", INF, "metrics.psnr_outside_mask_db must be a finite number"),
        ("metrics", [1, 2], "'metrics' must be an object, got list"),
        ("training", "ab", "'training' must be an object, got str"),
        ("format_version", True, "format_version True is not supported"),
        ("format_version", NAN, "format_version nan is not supported"),
    ],
)
def test_other_numbers_and_objects_are_validated(
    models_root: Path, path: str, value: object, message: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        ModelManifest.from_dict(with_value(fixture_manifest(models_root), path, value))
    assert message in str(caught.value)


def test_free_form_metrics_are_kept(models_root: Path) -> None:
    data = with_value(
        fixture_manifest(models_root), "metrics", {"attribute_success_rate": 0.9, "notes": [NAN, "any"]}
    )
    metrics = ModelManifest.from_dict(data).metrics
    assert metrics["attribute_success_rate"] == 0.9 and math.isnan(metrics["notes"][0])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"value_range": [NaN, 1.0]', "value_range must be a finite number, got nan"),
        ('"value_range": [-1.0, Infinity]', "value_range must be a finite number, got inf"),
        ('"value_range": [-1.0, 1e999]', "value_range must be a finite number, got inf"),
        ('"value_range": [-1.0, 1.0], "template": {"size": 16384}', "from 32 to 1024"),
    ],
)
def test_the_registry_reports_bad_numbers_in_the_file(
    tmp_path: Path, models_root: Path, text: str, message: str
) -> None:
    folder = onnx_fixtures.model_folder(tmp_path, "bad-numbers")
    data = json.loads((folder / MANIFEST_FILE).read_text())
    data.pop("value_range")
    if "template" in text:
        data.pop("template")
    (folder / MANIFEST_FILE).write_text(json.dumps(data)[:-1] + ", " + text + "}")
    onnx_fixtures.model_folder(tmp_path, "good")
    registry = ModelRegistry([tmp_path])
    reasons = {entry.directory.name: entry.reason or "" for entry in registry.entries}
    assert message in reasons["bad-numbers"]
    assert registry.get("good").available


@pytest.mark.parametrize("value", [NAN, INF, -INF], ids=["nan", "inf", "-inf"])
def test_a_model_that_outputs_nan_or_inf_raises_instead_of_painting(tmp_path: Path, value: float) -> None:
    folder = onnx_fixtures.model_folder(tmp_path, "broken", "global", with_enhancer=False)
    onnx_fixtures.replace_transform(folder, onnx_fixtures.non_finite_transform, value=value)
    entry = ModelRegistry([tmp_path]).get("broken")  # shapes and hash are right: only running shows it
    model = load_attribute_model(entry, Device.CPU)
    crops = np.full((2, 128, 128, 3), 128, np.uint8)
    with pytest.raises(
        ModelError, match=r"transform\.onnx: the model produced 32,768 NaN or infinite values"
    ):
        model.transform(crops)


def test_a_photo_edited_by_a_nan_model_is_an_error_not_a_black_face(
    tmp_path: Path, astronaut: np.ndarray, astronaut_face
) -> None:
    from diat_studio.core.pipeline import edit_photo

    folder = onnx_fixtures.model_folder(tmp_path, "broken-mouth", "local", with_enhancer=True)
    onnx_fixtures.replace_transform(folder, onnx_fixtures.non_finite_transform, value=NAN)
    model = load_attribute_model(ModelRegistry([tmp_path]).get("broken-mouth"), Device.CPU)
    before = astronaut.copy()
    with pytest.raises(ModelError, match="NaN or infinite values"):
        edit_photo(astronaut, [astronaut_face], model)
    assert np.array_equal(astronaut, before)
