"""The model registry: every model folder the app knows about, usable or not, and why not.

A model folder is any sub-folder holding a `manifest.json`. The registry checks each one without running
it — manifest fields, files present, SHA-256 hashes, ONNX graph readable, tensor names and shapes as the
manifest says — and lists a bad model as unavailable with the reason instead of failing as a whole.

An experimental model (manifest `experimental: true`) is usable but is left out of what a user is offered
(`visible`) unless experimental models are asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from diat_studio.core.errors import ModelError
from diat_studio.core.manifest import MANIFEST_FILE, ManifestError, ModelManifest, NetworkSpec
from diat_studio.core.paths import bundled_models_dir, user_models_dir


@dataclass(frozen=True)
class ModelEntry:
    """One model folder as the registry found it."""

    name: str
    directory: Path
    manifest: ModelManifest | None
    reason: str | None = None
    """Why the model cannot be used; None when it can."""

    @property
    def available(self) -> bool:
        return self.reason is None and self.manifest is not None

    @property
    def experimental(self) -> bool:
        """The manifest marks the model experimental (it does not pass its quality bar yet)."""
        return self.manifest is not None and self.manifest.experimental

    @property
    def label(self) -> str:
        """The name a list shows: the display name, marked "(experimental)" where it applies."""
        return self.manifest.label if self.manifest is not None else self.name

    def network_path(self, spec: NetworkSpec) -> Path:
        return (self.directory / spec.file).resolve()

    def onnx_bytes(self) -> int:
        """Total size of the model's ONNX files (transform and, if any, enhancer)."""
        if self.manifest is None:
            return 0
        specs = [self.manifest.transform] + ([self.manifest.enhancer] if self.manifest.enhancer else [])
        return sum(self.network_path(spec).stat().st_size for spec in specs)


class ModelRegistry:
    """Scans model folders in order; an earlier folder's model shadows a later one of the same name."""

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = [Path(folder) for folder in folders]
        self._entries: list[ModelEntry] = []
        self._hash_cache: dict[tuple[Path, int, int], str] = {}
        self.scan()

    @classmethod
    def default(cls, extra_folders: Iterable[Path] = ()) -> ModelRegistry:
        """User models first (so they can replace a bundled one), then extra folders, then bundled."""
        return cls([user_models_dir(), *extra_folders, bundled_models_dir()])

    @property
    def entries(self) -> list[ModelEntry]:
        return list(self._entries)

    def available(self) -> list[ModelEntry]:
        return [entry for entry in self._entries if entry.available]

    def visible(
        self, include_experimental: bool = False, *, include_unavailable: bool = False
    ) -> list[ModelEntry]:
        """What a user is offered: the usable models (and the unusable ones, to show why, if asked),
        without the experimental ones unless `include_experimental`."""
        return [
            entry
            for entry in self._entries
            if (entry.available or include_unavailable) and (include_experimental or not entry.experimental)
        ]

    def hidden_experimental(self) -> list[ModelEntry]:
        """The usable experimental models, which `visible()` leaves out by default."""
        return [entry for entry in self.available() if entry.experimental]

    def scan(self) -> list[ModelEntry]:
        entries: list[ModelEntry] = []
        seen: dict[str, Path] = {}
        for folder in self.folders:
            if not folder.is_dir():
                continue
            for manifest_path in sorted(folder.glob(f"*/{MANIFEST_FILE}")):
                entry = self._check(manifest_path.parent)
                if entry.name in seen:
                    entry = ModelEntry(
                        entry.name, entry.directory, entry.manifest, f"shadowed by {seen[entry.name]}"
                    )
                elif entry.available:
                    seen[entry.name] = entry.directory
                entries.append(entry)
        self._entries = entries
        return self.entries

    def get(self, name: str) -> ModelEntry:
        """The usable model called `name`, or a ModelError that says why there is none."""
        matches = [entry for entry in self._entries if entry.name == name]
        for entry in matches:
            if entry.available:
                return entry
        if matches:
            raise ModelError(f"model '{name}' is unavailable: {matches[0].reason}")
        known = ", ".join(sorted({entry.name for entry in self.available()})) or "none installed"
        raise ModelError(f"no model named '{name}' (available: {known})")

    def _check(self, directory: Path) -> ModelEntry:
        try:
            manifest = ModelManifest.load(directory)
        except ManifestError as exc:
            return ModelEntry(directory.name, directory, None, str(exc))
        try:
            self._check_network(directory, manifest.transform, manifest, {"image": 3})
            if manifest.enhancer is not None:
                self._check_network(directory, manifest.enhancer, manifest, manifest.enhancer_roles())
        except ModelError as exc:
            return ModelEntry(manifest.name, directory, manifest, str(exc))
        return ModelEntry(manifest.name, directory, manifest, None)

    def _check_network(
        self, directory: Path, spec: NetworkSpec, manifest: ModelManifest, roles: dict[str, int]
    ) -> None:
        path = (directory / spec.file).resolve()
        if not path.is_file():
            raise ModelError(f"{spec.file}: file not found")
        digest = self._sha256(path)
        if digest != spec.sha256:
            raise ModelError(f"{spec.file}: SHA-256 mismatch (file is corrupt or was replaced)")
        try:
            model = onnx.load(str(path), load_external_data=False)
        except Exception as exc:  # onnx raises protobuf DecodeError and others
            raise ModelError(f"{spec.file}: not a readable ONNX model ({exc})") from exc
        initializers = {init.name for init in model.graph.initializer}
        graph_inputs = {value.name: value for value in model.graph.input if value.name not in initializers}
        graph_outputs = {value.name: value for value in model.graph.output}
        size = manifest.crop_size
        for role, channels in roles.items():
            name = spec.inputs[role]
            if name not in graph_inputs:
                raise ModelError(f"{spec.file}: no input named '{name}' (has {', '.join(graph_inputs)})")
            _check_shape(spec.file, f"input '{name}'", graph_inputs[name], channels, size)
        if spec.output not in graph_outputs:
            raise ModelError(f"{spec.file}: no output named '{spec.output}' (has {', '.join(graph_outputs)})")
        _check_shape(spec.file, f"output '{spec.output}'", graph_outputs[spec.output], 3, size)

    def _sha256(self, path: Path) -> str:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key not in self._hash_cache:
            self._hash_cache[key] = sha256_file(path)
        return self._hash_cache[key]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_shape(file: str, what: str, value: onnx.ValueInfoProto, channels: int, size: int) -> None:
    """NCHW with the given channel count; H and W either symbolic or equal to the crop size."""
    tensor = value.type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT:
        raise ModelError(f"{file}: {what} must be float32")
    if not tensor.HasField("shape"):
        return  # no static shape information: checked when the model runs
    dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in tensor.shape.dim]
    expected = f"N×{channels}×{size}×{size}"
    if len(dims) != 4:
        raise ModelError(f"{file}: {what} has rank {len(dims)}, expected {expected}")
    if dims[1] is not None and dims[1] != channels:
        raise ModelError(f"{file}: {what} has {dims[1]} channels, expected {expected}")
    for dim in dims[2:]:
        if dim is not None and dim != size:
            raise ModelError(f"{file}: {what} is {dims[2]}×{dims[3]}, expected {expected}")
