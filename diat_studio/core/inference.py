"""ONNX Runtime inference: the one place that creates sessions and picks execution providers.

`Device.AUTO` uses CUDA when a session really runs on it (the provider is listed *and* loads: a missing
CUDA/cuDNN library only shows up when the session is created) and the CPU otherwise. A forced CUDA
request that cannot be met falls back to the CPU and says so in `ProviderReport.message`.

One small wrapper per network kind (`TransformNetwork`, `LocalEnhancer`, `GlobalEnhancer`) converts
between uint8 NHWC face crops and the models' NCHW float tensors.

A bad model never runs: a session is created from the bytes of the model file as read (a regular file
inside the model's folder, below the size cap) after their SHA-256 is checked against the manifest again,
so a file replaced after the registry's scan is refused. A network whose output holds NaN or ±Inf raises
a ModelError instead of being painted as black pixels.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import onnxruntime as ort

from diat_studio.core.errors import ModelError
from diat_studio.core.manifest import ModelManifest, NetworkSpec
from diat_studio.core.model_files import UnsafeFileError, read_model_file
from diat_studio.core.registry import MAX_NETWORK_BYTES, ModelEntry

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class Device(str, Enum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


@dataclass(frozen=True)
class ProviderReport:
    """What was asked for, what runs, and a message when the two differ."""

    requested: Device
    active: tuple[str, ...]
    message: str | None = None

    @property
    def uses_cuda(self) -> bool:
        return bool(self.active) and self.active[0] == CUDA

    @property
    def label(self) -> str:
        return "CUDA" if self.uses_cuda else "CPU"


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def create_session(
    path: Path | bytes, device: Device = Device.AUTO, *, name: str | None = None
) -> tuple[ort.InferenceSession, ProviderReport]:
    """Create an ONNX Runtime session for a model file (or serialised model) on the requested device,
    with CPU fallback. `name` names the model in errors (default: the file's name)."""
    device = Device(device)
    source = path if isinstance(path, bytes) else str(path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    message = None
    if device is not Device.CPU:
        if CUDA in available_providers():
            try:
                session = ort.InferenceSession(source, options, providers=[CUDA, CPU])
                if session.get_providers()[0] == CUDA:
                    return session, ProviderReport(device, tuple(session.get_providers()))
                message = "CUDA could not be initialised (check the CUDA and cuDNN libraries); using the CPU"
            except Exception as exc:  # onnxruntime raises its own RuntimeError subclasses
                message = f"CUDA could not be initialised ({exc}); using the CPU"
        elif device is Device.CUDA:
            message = "this onnxruntime build has no CUDA support (install onnxruntime-gpu); using the CPU"
    try:
        session = ort.InferenceSession(source, options, providers=[CPU])
    except Exception as exc:
        label = name or (path.name if isinstance(path, Path) else "model")
        raise ModelError(f"{label}: ONNX Runtime cannot load this model ({exc})") from exc
    return session, ProviderReport(device, tuple(session.get_providers()), message)


def probe_device(device: Device = Device.AUTO) -> ProviderReport:
    """Which providers a session would really run on, found by loading a one-node model."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return create_session(model.SerializeToString(), device)[1]


class SessionCache:
    """Sessions per (file, hash, device), created once and shared by every caller (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[tuple[Path, str, Device], tuple[ort.InferenceSession, ProviderReport]] = {}

    def get(
        self, path: Path, sha256: str, device: Device, *, folder: Path | None = None
    ) -> tuple[ort.InferenceSession, ProviderReport]:
        """The session for the model file at `path`, which must lie inside `folder` (default: its own
        folder). The session is created from the bytes read, after they are checked against `sha256`."""
        key = (Path(os.path.realpath(path)), sha256, Device(device))
        with self._lock:
            if key not in self._sessions:
                name = Path(path).name
                try:
                    data = read_model_file(key[0], Path(folder or key[0].parent), MAX_NETWORK_BYTES)
                except FileNotFoundError as exc:
                    raise ModelError(f"{name}: file not found") from exc
                except OSError as exc:
                    raise ModelError(f"{name}: cannot read ({exc.strerror or exc})") from exc
                except UnsafeFileError as exc:
                    raise ModelError(f"{name}: {exc}") from exc
                if hashlib.sha256(data).hexdigest() != sha256:
                    raise ModelError(
                        f"{name}: SHA-256 mismatch (the file changed since the models were checked)"
                    )
                self._sessions[key] = create_session(data, key[2], name=name)
            return self._sessions[key]

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


class _OnnxNetwork:
    """A session plus the manifest's tensor names; runs batches, one face at a time if the batch is fixed."""

    def __init__(
        self, session: ort.InferenceSession, spec: NetworkSpec, value_range: tuple[float, float]
    ) -> None:
        self.session = session
        self.spec = spec
        self.low, self.high = value_range
        batch_dims = [value.shape[0] for value in session.get_inputs()]
        self.fixed_batch = next((dim for dim in batch_dims if isinstance(dim, int)), None)

    def to_tensor(self, images: np.ndarray) -> np.ndarray:
        """N×H×W×3 uint8 → N×3×H×W float32 in the model's value range."""
        scaled = images.astype(np.float32) * np.float32((self.high - self.low) / 255.0) + np.float32(self.low)
        return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))

    def from_tensor(self, tensor: np.ndarray) -> np.ndarray:
        """N×3×H×W float → N×H×W×3 uint8."""
        unit = (np.asarray(tensor, np.float32) - np.float32(self.low)) / np.float32(self.high - self.low)
        return np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Feed tensors by role; returns the output tensor for the whole batch."""
        named = {self.spec.inputs[role]: tensor for role, tensor in feeds.items()}
        count = next(iter(named.values())).shape[0]
        step = self.fixed_batch or count
        outputs = []
        for start in range(0, count, max(step, 1)):
            chunk = {name: tensor[start : start + step] for name, tensor in named.items()}
            try:
                outputs.append(self.session.run([self.spec.output], chunk)[0])
            except Exception as exc:
                raise ModelError(f"{self.spec.file}: inference failed ({exc})") from exc
        result = np.concatenate(outputs, axis=0)
        expected = next(iter(named.values())).shape
        if (
            result.ndim != 4
            or result.shape[0] != count
            or result.shape[1] != 3
            or result.shape[2:] != expected[2:]
        ):
            raise ModelError(
                f"{self.spec.file}: output shape {result.shape} does not match the input {expected}"
            )
        finite = np.isfinite(result)
        if not finite.all():
            bad = int(finite.size - np.count_nonzero(finite))
            raise ModelError(
                f"{self.spec.file}: the model produced {bad:,} NaN or infinite values out of {finite.size:,} "
                "(the model is broken, or does not suit this input): nothing was painted"
            )
        return result


class TransformNetwork(_OnnxNetwork):
    """T: face crops in, attribute-edited face crops out.

    With `mirror_average` (the manifest's), each crop is edited as it is and mirrored, and the two outputs
    (the mirrored one flipped back) are averaged before rounding to 8 bits."""

    def __init__(
        self,
        session: ort.InferenceSession,
        spec: NetworkSpec,
        value_range: tuple[float, float],
        mirror_average: bool = False,
    ) -> None:
        super().__init__(session, spec, value_range)
        self.mirror_average = mirror_average

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        tensor = self.to_tensor(crops)
        if not self.mirror_average:
            return self.from_tensor(self.run({"image": tensor}))
        both = self.run({"image": np.concatenate([tensor, tensor[..., ::-1]])})  # a contiguous copy
        count = len(tensor)
        return self.from_tensor((both[:count] + both[count:, ..., ::-1]) * np.float32(0.5))


class LocalEnhancer(_OnnxNetwork):
    """Local enhancement: refines the transformed face inside the mask, given the original face."""

    def __call__(self, transformed: np.ndarray, original: np.ndarray, masks: np.ndarray) -> np.ndarray:
        mask_tensor = np.ascontiguousarray(masks.astype(np.float32)[:, None, :, :])
        feeds = {
            "transformed": self.to_tensor(transformed),
            "original": self.to_tensor(original),
            "mask": mask_tensor,
        }
        return self.from_tensor(self.run(feeds))


class GlobalEnhancer(_OnnxNetwork):
    """Global enhancement: de-blurs the whole transformed face."""

    def __call__(self, transformed: np.ndarray) -> np.ndarray:
        return self.from_tensor(self.run({"transformed": self.to_tensor(transformed)}))


@dataclass(frozen=True, eq=False)
class AttributeModel:
    """A registry entry made runnable: its manifest, its networks and the providers they run on."""

    manifest: ModelManifest
    transform: TransformNetwork
    enhancer: LocalEnhancer | GlobalEnhancer | None
    providers: ProviderReport

    @property
    def name(self) -> str:
        return self.manifest.name


def load_attribute_model(
    entry: ModelEntry, device: Device = Device.AUTO, cache: SessionCache | None = None
) -> AttributeModel:
    """Create (or reuse from `cache`) the sessions of an available registry entry."""
    if not entry.available or entry.manifest is None:
        raise ModelError(f"model '{entry.name}' is unavailable: {entry.reason}")
    manifest = entry.manifest
    cache = cache or SessionCache()
    folder = entry.directory
    spec = manifest.transform
    session, report = cache.get(entry.network_path(spec), spec.sha256, device, folder=folder)
    transform = TransformNetwork(session, spec, manifest.value_range, manifest.mirror_average)
    enhancer: LocalEnhancer | GlobalEnhancer | None = None
    if manifest.enhancer is not None:
        spec = manifest.enhancer
        enhancer_session, _ = cache.get(entry.network_path(spec), spec.sha256, device, folder=folder)
        wrapper = LocalEnhancer if manifest.kind == "local" else GlobalEnhancer
        enhancer = wrapper(enhancer_session, spec, manifest.value_range)
    return AttributeModel(manifest, transform, enhancer, report)
