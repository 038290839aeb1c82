from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diat_studio.core.errors import ModelError
from diat_studio.core.inference import (
    CPU,
    Device,
    SessionCache,
    create_session,
    load_attribute_model,
    probe_device,
)
from diat_studio.core.registry import ModelRegistry
from tests import onnx_fixtures


def test_transform_runs_a_batch_through_onnx_runtime(models_root: Path) -> None:
    model = load_attribute_model(ModelRegistry([models_root]).get("redden-mouth"), Device.CPU)
    crops = np.random.default_rng(0).integers(0, 256, (5, 128, 128, 3), dtype=np.uint8)
    out = model.transform(crops)
    assert out.shape == crops.shape and out.dtype == np.uint8
    # the fixture's formula, computed independently: x → clip(x·gain + bias) in [-1, 1]
    x = crops.astype(np.float64) / 255 * 2 - 1
    expected = np.clip(x * (1.0, 0.55, 0.55) + (0.35, -0.1, -0.1), -1, 1)
    assert np.abs(out.astype(float) - (expected + 1) / 2 * 255).max() <= 1.0
    assert model.providers.active == (CPU,)


def test_local_enhancer_uses_the_mask(models_root: Path) -> None:
    model = load_attribute_model(ModelRegistry([models_root]).get("redden-mouth"), Device.CPU)
    original = np.full((2, 128, 128, 3), 100, np.uint8)
    transformed = np.full((2, 128, 128, 3), 200, np.uint8)
    masks = np.zeros((2, 128, 128), np.float32)
    masks[:, 32:96, 32:96] = 1.0
    out = model.enhancer(transformed, original, masks)  # type: ignore[misc]
    assert np.all(out[:, 40, 40] == 200) and np.all(out[:, 5, 5] == 100)


def test_fixed_batch_models_are_run_one_face_at_a_time(tmp_path: Path) -> None:
    onnx_fixtures.model_folder(tmp_path, "fixed", batch=1, size=128, with_enhancer=False)
    model = load_attribute_model(ModelRegistry([tmp_path]).get("fixed"), Device.CPU)
    out = model.transform(np.zeros((3, 128, 128, 3), np.uint8))
    assert out.shape == (3, 128, 128, 3)


def test_sessions_are_cached(models_root: Path) -> None:
    entry = ModelRegistry([models_root]).get("redden-face")
    cache = SessionCache()
    first = load_attribute_model(entry, Device.CPU, cache)
    second = load_attribute_model(entry, Device.CPU, cache)
    assert first.transform.session is second.transform.session


def test_forced_cuda_falls_back_to_cpu_and_says_so(models_root: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA: the fallback path is not reachable")
    report = probe_device(Device.CUDA)
    assert report.active[0] == CPU and report.label == "CPU"
    assert report.message and "no CUDA support" in report.message
    assert probe_device(Device.AUTO).message is None
    model = load_attribute_model(ModelRegistry([models_root]).get("redden-face"), Device.CUDA)
    assert model.providers.active == (CPU,) and model.providers.message


def test_an_unloadable_model_raises_a_model_error(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.onnx"
    bogus.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot load"):
        create_session(bogus, Device.CPU)


def test_a_model_file_replaced_after_the_scan_never_runs(tmp_path: Path) -> None:
    """The session is made from the bytes that were read and hashed, never from whatever the path holds."""
    folder = onnx_fixtures.model_folder(tmp_path, "swapped", with_enhancer=False)
    entry = ModelRegistry([tmp_path]).get("swapped")
    onnx_fixtures.colour_transform(
        folder / "transform.onnx", gain=(0.0, 0.0, 0.0)
    )  # a different, valid model
    with pytest.raises(ModelError, match=r"transform\.onnx: SHA-256 mismatch \(the file changed since"):
        load_attribute_model(entry, Device.CPU)


def test_a_model_file_swapped_for_a_link_outside_its_folder_never_runs(tmp_path: Path) -> None:
    onnx_fixtures.model_folder(tmp_path, "other", with_enhancer=False)
    folder = onnx_fixtures.model_folder(tmp_path, "swapped", with_enhancer=False)
    entry = ModelRegistry([tmp_path]).get("swapped")
    (folder / "transform.onnx").unlink()
    (folder / "transform.onnx").symlink_to(tmp_path / "other" / "transform.onnx")  # same bytes, same hash
    with pytest.raises(ModelError, match=r"transform\.onnx: refused: it leads outside the model's folder"):
        load_attribute_model(entry, Device.CPU)


def test_the_session_cache_checks_the_hash_of_a_file_given_by_path(models_root: Path) -> None:
    entry = ModelRegistry([models_root]).get("redden-face")
    assert entry.manifest is not None
    path = entry.network_path(entry.manifest.transform)
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        SessionCache().get(path, "0" * 64, Device.CPU)
    session, _ = SessionCache().get(path, entry.manifest.transform.sha256, Device.CPU)
    assert session.get_inputs()[0].name == "input"
