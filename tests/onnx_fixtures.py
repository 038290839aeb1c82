"""Small real ONNX models built with onnx.helper, and model folders with valid manifests around them.

Used by the tests and by bench/ (never shipped: shipped models come only from the trainer).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from diat_studio.core.alignment import CanonicalTemplate
from diat_studio.core.manifest import ModelManifest, NetworkSpec
from diat_studio.core.regions import RegionKind
from diat_studio.core.registry import sha256_file

OPSET = 17


def _image_input(name: str, channels: int, size: int | None, batch: int | None = None) -> onnx.ValueInfoProto:
    spatial: list[int | str] = [size, size] if size else ["height", "width"]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch or "batch", channels, *spatial])


def _save(graph: onnx.GraphProto, path: Path) -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="tests")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def colour_transform(
    path: Path,
    gain: tuple[float, float, float] = (1.0, 0.55, 0.55),
    bias: tuple[float, float, float] = (0.35, -0.1, -0.1),
    size: int | None = None,
    channels: int = 3,
    batch: int | None = None,
) -> Path:
    """T(x) = clip(x · gain + bias, -1, 1) per channel: a fixed, visible colour change (reddening)."""
    gain_t = numpy_helper.from_array(np.array(gain, np.float32).reshape(1, 3, 1, 1), "gain")
    bias_t = numpy_helper.from_array(np.array(bias, np.float32).reshape(1, 3, 1, 1), "bias")
    low = numpy_helper.from_array(np.array(-1.0, np.float32), "low")
    high = numpy_helper.from_array(np.array(1.0, np.float32), "high")
    nodes = []
    source = "input"
    if channels != 3:  # a deliberately wrong model: slice the first 3 channels of a wider input
        starts = numpy_helper.from_array(np.array([0], np.int64), "starts")
        ends = numpy_helper.from_array(np.array([3], np.int64), "ends")
        axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
        nodes.append(helper.make_node("Slice", ["input", "starts", "ends", "axes"], ["sliced"]))
        source = "sliced"
        extra = [starts, ends, axes]
    else:
        extra = []
    nodes += [
        helper.make_node("Mul", [source, "gain"], ["scaled"]),
        helper.make_node("Add", ["scaled", "bias"], ["shifted"]),
        helper.make_node("Clip", ["shifted", "low", "high"], ["output"]),
    ]
    graph = helper.make_graph(
        nodes,
        "colour_transform",
        [_image_input("input", channels, size, batch)],
        [_image_input("output", 3, size, batch)],
        [gain_t, bias_t, low, high, *extra],
    )
    return _save(graph, path)


def local_enhancer(path: Path) -> Path:
    """E(t, x, m) = m·t + (1 − m)·x: the transformed face inside the mask, the original outside."""
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [
        helper.make_node("Mul", ["transformed", "mask"], ["inside"]),
        helper.make_node("Sub", ["one", "mask"], ["inverse"]),
        helper.make_node("Mul", ["original", "inverse"], ["outside"]),
        helper.make_node("Add", ["inside", "outside"], ["enhanced"]),
    ]
    graph = helper.make_graph(
        nodes,
        "local_enhancer",
        [
            _image_input("transformed", 3, None),
            _image_input("original", 3, None),
            _image_input("mask", 1, None),
        ],
        [_image_input("enhanced", 3, None)],
        [one],
    )
    return _save(graph, path)


def global_enhancer(path: Path) -> Path:
    """A depthwise 3×3 sharpening convolution (a real conv layer, weights fixed)."""
    kernel = np.array([[0, -0.25, 0], [-0.25, 2.0, -0.25], [0, -0.25, 0]], np.float32)
    weight = numpy_helper.from_array(np.repeat(kernel[None, None], 3, axis=0), "weight")
    low = numpy_helper.from_array(np.array(-1.0, np.float32), "low")
    high = numpy_helper.from_array(np.array(1.0, np.float32), "high")
    nodes = [
        helper.make_node("Conv", ["transformed", "weight"], ["sharp"], group=3, pads=[1, 1, 1, 1]),
        helper.make_node("Clip", ["sharp", "low", "high"], ["enhanced"]),
    ]
    graph = helper.make_graph(
        nodes,
        "global_enhancer",
        [_image_input("transformed", 3, None)],
        [_image_input("enhanced", 3, None)],
        [weight, low, high],
    )
    return _save(graph, path)


def model_folder(
    root: Path,
    name: str,
    kind: str = "local",
    region: RegionKind = RegionKind.MOUTH,
    *,
    crop_size: int = 128,
    with_enhancer: bool = True,
    experimental: bool = False,
    **transform_options: object,
) -> Path:
    """A complete model folder (transform.onnx, enhancer.onnx, manifest.json) under root/name."""
    folder = root / name
    transform = colour_transform(folder / "transform.onnx", **transform_options)  # type: ignore[arg-type]
    enhancer_spec = None
    if with_enhancer:
        if kind == "local":
            enhancer = local_enhancer(folder / "enhancer.onnx")
            inputs = {"transformed": "transformed", "original": "original", "mask": "mask"}
        else:
            enhancer = global_enhancer(folder / "enhancer.onnx")
            inputs = {"transformed": "transformed"}
        enhancer_spec = NetworkSpec("enhancer.onnx", sha256_file(enhancer), inputs, "enhanced")
    manifest = ModelManifest(
        name=name,
        display_name=name.replace("-", " ").capitalize(),
        attribute="Test_Attribute",
        direction="add",
        kind=kind,  # type: ignore[arg-type]
        region=region,
        template=CanonicalTemplate(size=crop_size),
        transform=NetworkSpec("transform.onnx", sha256_file(transform), {"image": "input"}, "output"),
        enhancer=enhancer_spec,
        description="test fixture: a fixed colour transform",
        training={"fixture": True},
        metrics={},
        licence="test fixture, no data",
        experimental=experimental,
    )
    manifest.save(folder)
    return folder


def non_finite_transform(path: Path, value: float = float("nan")) -> Path:
    """T(x) = x + (value, 0, 0): a broken model whose red channel is all NaN (or ±Inf), nothing clipped."""
    bias = numpy_helper.from_array(np.array([value, 0.0, 0.0], np.float32).reshape(1, 3, 1, 1), "bias")
    graph = helper.make_graph(
        [helper.make_node("Add", ["input", "bias"], ["output"])],
        "non_finite_transform",
        [_image_input("input", 3, None)],
        [_image_input("output", 3, None)],
        [bias],
    )
    return _save(graph, path)


def replace_transform(folder: Path, build: Callable[..., Path], **options: object) -> Path:
    """Rebuild a model folder's transform.onnx with `build(path, **options)`; the manifest gets its hash."""
    path = build(folder / "transform.onnx", **options)
    data = json.loads((folder / "manifest.json").read_text())
    data["transform"]["sha256"] = sha256_file(path)
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


def constant_transform(path: Path, image: np.ndarray) -> Path:
    """T(x) = x · 0 + the given S×S×3 uint8 image (in [-1, 1]): a model that always returns one face."""
    value = (np.asarray(image, np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
    constant = numpy_helper.from_array(value.astype(np.float32), "constant")
    zero = numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    size = int(image.shape[0])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["input", "zero"], ["nothing"]),
            helper.make_node("Add", ["nothing", "constant"], ["output"]),
        ],
        "constant_transform",
        [_image_input("input", 3, size)],
        [_image_input("output", 3, size)],
        [constant, zero],
    )
    return _save(graph, path)
