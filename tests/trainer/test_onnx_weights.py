"""Exported weights stored as float16, computed in float32 (trainer/onnx_weights.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto

from trainer.export import export_onnx
from trainer.networks import ResidualEditor
from trainer.onnx_weights import store_weights_as_float16


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def test_exported_weights_are_float16_and_the_output_stays_float32(tmp_path: Path) -> None:
    torch.manual_seed(0)
    editor = ResidualEditor(width=8)
    with torch.no_grad():  # a trained-looking editor: the zero-initialised last layer is not zero
        for parameter in editor.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    export_onnx(editor, {"image": x}, "edited", tmp_path / "half.onnx")

    plain = tmp_path / "plain.onnx"  # the same export without the rewrite
    torch.onnx.export(
        editor.eval(), (x,), str(plain), input_names=["image"], output_names=["edited"], dynamo=False
    )
    model = onnx.load(str(tmp_path / "half.onnx"))
    types = {w.name: w.data_type for w in model.graph.initializer}
    assert sum(t == TensorProto.FLOAT16 for t in types.values()) >= 10
    assert model.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert (tmp_path / "half.onnx").stat().st_size < 0.6 * plain.stat().st_size

    with torch.no_grad():
        expected = editor(x).numpy()
    got, reference = _run(tmp_path / "half.onnx", x.numpy()), _run(plain, x.numpy())
    assert got.dtype == np.float32
    assert np.abs(reference - expected).max() < 1e-4
    assert 0 < np.abs(got - expected).max() < 2 / 255  # rounded weights: under a level of an 8-bit image

    assert store_weights_as_float16(tmp_path / "half.onnx") == 0  # already stored so: left as it is


def test_weights_that_do_not_fit_float16_stay_float32(tmp_path: Path) -> None:
    conv = torch.nn.Conv2d(3, 64, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1e-3)
        conv.weight[0, 0, 0, 0] = 1e5  # beyond float16's range
    path = tmp_path / "big.onnx"
    x = torch.rand(1, 3, 8, 8)
    export_onnx(conv, {"image": x}, "edited", path)
    model = onnx.load(str(path))
    assert [w.data_type for w in model.graph.initializer] == [TensorProto.FLOAT]
    with torch.no_grad():
        assert np.allclose(_run(path, x.numpy()), conv(x).numpy(), rtol=1e-5, atol=1e-4)
