from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from diat_studio.core.errors import ModelError
from diat_studio.core.manifest import ModelManifest
from diat_studio.core.regions import RegionKind
from diat_studio.core.registry import ModelRegistry
from tests import onnx_fixtures


def test_valid_models_are_available(models_root: Path) -> None:
    registry = ModelRegistry([models_root])
    assert {entry.name for entry in registry.available()} == {"redden-mouth", "redden-face"}
    local = registry.get("redden-mouth").manifest
    assert local is not None and local.kind == "local" and local.region is RegionKind.MOUTH
    assert local.crop_size == 128 and local.enhancer is not None


def test_wrong_hash_is_unavailable_and_the_rest_keeps_working(tmp_path: Path, models_root: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_root, root)
    broken = root / "redden-mouth" / "transform.onnx"
    broken.write_bytes(broken.read_bytes() + b"\0")
    registry = ModelRegistry([root])
    entry = next(e for e in registry.entries if e.name == "redden-mouth")
    assert not entry.available and "SHA-256 mismatch" in (entry.reason or "")
    assert registry.get("redden-face").available
    with pytest.raises(ModelError, match=r"unavailable: transform\.onnx: SHA-256 mismatch"):
        registry.get("redden-mouth")


def test_wrong_input_shape_is_unavailable(tmp_path: Path) -> None:
    onnx_fixtures.model_folder(tmp_path, "wide-input", channels=4)
    onnx_fixtures.model_folder(tmp_path, "wrong-size", size=64)
    registry = ModelRegistry([tmp_path])
    reasons = {entry.name: entry.reason for entry in registry.entries}
    assert "4 channels" in reasons["wide-input"]
    assert "64×64, expected N×3×128×128" in reasons["wrong-size"]
    assert registry.available() == []


def test_unreadable_and_incomplete_folders_are_reported(tmp_path: Path, models_root: Path) -> None:
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "manifest.json").write_text("{not json")
    missing = tmp_path / "missing-file"
    shutil.copytree(models_root / "redden-face", missing)
    (missing / "enhancer.onnx").unlink()
    not_onnx = tmp_path / "not-onnx"
    shutil.copytree(models_root / "redden-face", not_onnx)
    data = json.loads((not_onnx / "manifest.json").read_text())
    (not_onnx / "transform.onnx").write_bytes(b"this is not a protobuf")
    from diat_studio.core.registry import sha256_file

    data["name"] = "not-onnx"
    data["transform"]["sha256"] = sha256_file(not_onnx / "transform.onnx")
    (not_onnx / "manifest.json").write_text(json.dumps(data))
    bad_region = tmp_path / "bad-region"
    shutil.copytree(models_root / "redden-face", bad_region)
    data = json.loads((bad_region / "manifest.json").read_text())
    data["region"] = "ears"
    (bad_region / "manifest.json").write_text(json.dumps(data))
    registry = ModelRegistry([tmp_path])
    reasons = {entry.directory.name: entry.reason or "" for entry in registry.entries}
    assert "unreadable manifest" in reasons["garbage"]
    assert "enhancer.onnx: file not found" in reasons["missing-file"]
    assert "not a readable ONNX model" in reasons["not-onnx"]
    assert "unknown region 'ears'" in reasons["bad-region"]


def test_earlier_folder_shadows_a_later_one(tmp_path: Path, models_root: Path) -> None:
    user = tmp_path / "user"
    shutil.copytree(models_root / "redden-face", user / "redden-face")
    registry = ModelRegistry([user, models_root])
    face_entries = [e for e in registry.entries if e.name == "redden-face"]
    assert len(face_entries) == 2
    assert registry.get("redden-face").directory == user / "redden-face"
    assert "shadowed by" in (face_entries[1].reason or "")


def test_missing_folders_and_unknown_names(tmp_path: Path) -> None:
    registry = ModelRegistry([tmp_path / "nowhere"])
    assert registry.entries == []
    with pytest.raises(ModelError, match="no model named 'x' \\(available: none installed\\)"):
        registry.get("x")


def test_default_registry_scans_the_user_folder(isolated_user_dirs: Path, models_root: Path) -> None:
    shutil.copytree(models_root / "redden-mouth", isolated_user_dirs / "diat-studio" / "models" / "mine")
    registry = ModelRegistry.default()
    assert registry.get("redden-mouth").directory.name == "mine"


def test_manifest_round_trip(models_root: Path) -> None:
    manifest = ModelManifest.load(models_root / "redden-mouth")
    assert ModelManifest.from_dict(manifest.to_dict()) == manifest


def test_visible_leaves_out_experimental_models_unless_asked(
    tmp_path: Path, models_root: Path, experimental_root: Path
) -> None:
    broken = tmp_path / "broken" / "broken-eyes"
    shutil.copytree(experimental_root / "redden-eyes", broken)
    data = json.loads((broken / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**data, "name": "broken-eyes"}))
    (broken / "enhancer.onnx").unlink()
    registry = ModelRegistry([models_root, experimental_root, tmp_path / "broken"])

    eyes = registry.get("redden-eyes")  # usable: experimental models stay installed
    assert eyes.available and eyes.experimental and eyes.label == "Redden eyes (experimental)"
    assert not registry.get("redden-mouth").experimental
    assert registry.get("redden-mouth").label == "Redden mouth"

    def names(entries: list) -> set[str]:
        return {entry.name for entry in entries}

    assert names(registry.available()) == {"redden-mouth", "redden-face", "redden-eyes"}
    assert names(registry.visible()) == {"redden-mouth", "redden-face"}
    assert names(registry.visible(True)) == {"redden-mouth", "redden-face", "redden-eyes"}
    # unusable ones are only listed when asked for, and an experimental one only with experimental models
    assert names(registry.visible(include_unavailable=True)) == {"redden-mouth", "redden-face"}
    assert names(registry.visible(True, include_unavailable=True)) == {
        "redden-mouth",
        "redden-face",
        "redden-eyes",
        "broken-eyes",
    }
    assert names(registry.hidden_experimental()) == {"redden-eyes"}
