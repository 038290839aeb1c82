"""manifest.json: the optional `experimental` flag (omitted means false, written back only when true)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diat_studio.core.manifest import MANIFEST_FILE, ManifestError, ModelManifest
from diat_studio.core.paths import bundled_models_dir
from diat_studio.core.registry import ModelRegistry


def _data(models_root: Path) -> dict:
    return json.loads((models_root / "redden-mouth" / MANIFEST_FILE).read_text())


def test_a_manifest_without_the_field_is_not_experimental_and_stays_without_it(models_root: Path) -> None:
    data = _data(models_root)
    assert "experimental" not in data
    manifest = ModelManifest.from_dict(data)
    assert manifest.experimental is False
    assert manifest.label == manifest.display_name == "Redden mouth"
    assert "experimental" not in manifest.to_dict()
    assert ModelManifest.from_dict(manifest.to_dict()) == manifest
    # an explicit false is the same model, and is not written back either
    assert ModelManifest.from_dict({**data, "experimental": False}) == manifest


def test_an_experimental_manifest_round_trips_through_the_file(models_root: Path, tmp_path: Path) -> None:
    manifest = ModelManifest.from_dict({**_data(models_root), "experimental": True})
    assert manifest.experimental is True
    assert manifest.display_name == "Redden mouth"
    assert manifest.label == "Redden mouth (experimental)"
    assert manifest.to_dict()["experimental"] is True
    manifest.save(tmp_path)
    assert json.loads((tmp_path / MANIFEST_FILE).read_text())["experimental"] is True
    assert ModelManifest.load(tmp_path) == manifest


@pytest.mark.parametrize("value", ["yes", "true", 1, 0, None, []])
def test_a_non_boolean_experimental_value_is_a_clear_error(models_root: Path, value: object) -> None:
    with pytest.raises(ManifestError, match=r"'experimental' must be true or false, got "):
        ModelManifest.from_dict({**_data(models_root), "experimental": value})


def test_the_registry_reports_a_bad_experimental_value(models_root: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad-flag"
    folder.mkdir()
    for file in ("transform.onnx", "enhancer.onnx"):
        (folder / file).write_bytes((models_root / "redden-mouth" / file).read_bytes())
    (folder / MANIFEST_FILE).write_text(json.dumps({**_data(models_root), "experimental": "yes"}))
    (entry,) = ModelRegistry([tmp_path]).entries
    assert not entry.available
    assert "'experimental' must be true or false, got 'yes'" in (entry.reason or "")


def test_bundled_manifests_mark_experimental_models_with_the_flag_not_the_name() -> None:
    manifests = [ModelManifest.load(path.parent) for path in bundled_models_dir().glob(f"*/{MANIFEST_FILE}")]
    assert manifests
    for manifest in manifests:
        assert "experimental" not in manifest.display_name.lower(), manifest.name


def test_region_margin_round_trips_and_is_absent_from_older_manifests(
    models_root: Path, tmp_path: Path
) -> None:
    data = _data(models_root)
    assert "region_margin" not in data and ModelManifest.from_dict(data).region_margin is None
    manifest = ModelManifest.from_dict({**data, "region_margin": 0.45})
    assert manifest.region_margin == 0.45 and manifest.to_dict()["region_margin"] == 0.45
    manifest.save(tmp_path)
    assert ModelManifest.load(tmp_path) == manifest
    assert "region_margin" not in ModelManifest.from_dict(data).to_dict()


@pytest.mark.parametrize("value", [-0.1, 1.6, "wide", True, float("inf")])
def test_a_bad_region_margin_is_a_clear_error(models_root: Path, value: object) -> None:
    with pytest.raises(ManifestError, match=r"region_margin must be"):
        ModelManifest.from_dict({**_data(models_root), "region_margin": value})


def test_transform_passes_round_trip_and_are_absent_from_single_pass_manifests(
    models_root: Path, tmp_path: Path
) -> None:
    data = _data(models_root)
    assert "transform_passes" not in data and ModelManifest.from_dict(data).transform_passes == 1
    assert "transform_passes" not in ModelManifest.from_dict({**data, "transform_passes": 1}).to_dict()
    manifest = ModelManifest.from_dict({**data, "transform_passes": 2})
    assert manifest.transform_passes == 2 and manifest.to_dict()["transform_passes"] == 2
    manifest.save(tmp_path)
    assert ModelManifest.load(tmp_path) == manifest


def test_mirror_average_round_trips_and_is_absent_when_off(models_root: Path, tmp_path: Path) -> None:
    data = _data(models_root)
    assert "mirror_average" not in data and not ModelManifest.from_dict(data).mirror_average
    assert "mirror_average" not in ModelManifest.from_dict({**data, "mirror_average": False}).to_dict()
    manifest = ModelManifest.from_dict({**data, "mirror_average": True})
    assert manifest.mirror_average and manifest.to_dict()["mirror_average"] is True
    manifest.save(tmp_path)
    assert ModelManifest.load(tmp_path) == manifest


@pytest.mark.parametrize("value", [1, 0, "true", None, [True]])
def test_a_mirror_average_that_is_not_true_or_false_is_a_clear_error(
    models_root: Path, value: object
) -> None:
    with pytest.raises(ManifestError, match=r"'mirror_average' must be true or false, got"):
        ModelManifest.from_dict({**_data(models_root), "mirror_average": value})


@pytest.mark.parametrize("value", [0, 5, -1, 1.5, 2.0, True, "2", None])
def test_bad_transform_passes_are_a_clear_error(models_root: Path, value: object) -> None:
    with pytest.raises(ManifestError, match=r"transform_passes must be a whole number from 1 to 4, got"):
        ModelManifest.from_dict({**_data(models_root), "transform_passes": value})
