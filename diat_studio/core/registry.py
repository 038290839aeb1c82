"""The model registry: every model folder the app knows about, usable or not, and why not.

A model folder is any sub-folder holding a `manifest.json`. The registry checks each one without running
it — manifest fields, files present, SHA-256 hashes, ONNX graph readable, tensor names and shapes as the
manifest says — and lists a bad model as unavailable with the reason instead of failing as a whole.

An experimental model (manifest `experimental: true`) is usable but is left out of what a user is offered
(`visible`) unless experimental models are asked for.

Model folders are untrusted: the scan never blocks (FIFOs, devices), never reads outside a model's own
folder (symlinks, `..`, absolute paths, /proc), reads nothing larger than a cap, and one bad model — or one
folder that cannot be read — never affects the others. A model folder that cannot be checked is listed with
the reason; a models folder that cannot be listed is recorded in `problems`. Every reason and name is made
printable (control characters escaped) before it is stored, since a terminal shows them.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from diat_studio.core.errors import ModelError
from diat_studio.core.manifest import MANIFEST_FILE, ManifestError, ModelManifest, NetworkSpec
from diat_studio.core.model_files import UnsafeFileError, read_model_file, resolve_inside, shown
from diat_studio.core.paths import bundled_models_dir, user_models_dir

#: The largest ONNX file read (a protobuf message cannot exceed 2 GiB; shipped models are a few MB).
MAX_NETWORK_BYTES = 1 << 30

#: Errors that mean "there is nothing here", not "something here cannot be read".
_ABSENT = frozenset({errno.ENOENT, errno.ENOTDIR})


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

    @property
    def location(self) -> str:
        """The folder as text that is safe to print: a folder's name may hold control characters."""
        return shown(str(self.directory))

    def network_path(self, spec: NetworkSpec) -> Path:
        """The real path of one of the model's files; ModelError when it is not inside the model's folder."""
        return network_path(self.directory, spec)

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
        self.problems: list[str] = []
        """Models folders that exist but cannot be listed, each with the reason (set by `scan`)."""
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
        problems: list[str] = []
        seen: dict[str, Path] = {}
        for folder in self.folders:
            try:
                candidates = _model_folders(folder)
            except OSError as exc:
                if exc.errno not in _ABSENT or _exists(folder):
                    problems.append(shown(f"{folder}: cannot read the folder ({exc.strerror or exc})"))
                continue
            for directory, unreadable in candidates:
                entry = self._check(directory) if unreadable is None else _unavailable(directory, unreadable)
                if entry.name in seen:
                    entry = ModelEntry(
                        entry.name, entry.directory, entry.manifest, shown(f"shadowed by {seen[entry.name]}")
                    )
                elif entry.available:
                    seen[entry.name] = entry.directory
                entries.append(entry)
        self._entries = entries
        self.problems = problems
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
            return _unavailable(directory, str(exc))
        except Exception as exc:  # one model's defect must never stop the scan of the others
            return _unavailable(directory, f"cannot check the model ({type(exc).__name__}: {exc})")
        try:
            self._check_network(directory, manifest.transform, manifest, {"image": 3})
            if manifest.enhancer is not None:
                self._check_network(directory, manifest.enhancer, manifest, manifest.enhancer_roles())
        except ModelError as exc:
            return ModelEntry(manifest.name, directory, manifest, shown(str(exc)))
        except Exception as exc:
            reason = f"cannot check the model ({type(exc).__name__}: {exc})"
            return ModelEntry(manifest.name, directory, manifest, shown(reason))
        return ModelEntry(manifest.name, directory, manifest, None)

    def _check_network(
        self, directory: Path, spec: NetworkSpec, manifest: ModelManifest, roles: dict[str, int]
    ) -> None:
        data = read_network(directory, spec)
        if hashlib.sha256(data).hexdigest() != spec.sha256:
            raise ModelError(f"{spec.file}: SHA-256 mismatch (file is corrupt or was replaced)")
        try:
            model = onnx.load_model_from_string(data)
        except Exception as exc:  # onnx raises protobuf DecodeError and others
            raise ModelError(f"{spec.file}: not a readable ONNX model ({exc})") from exc
        if _uses_external_data(model):
            raise ModelError(f"{spec.file}: weights in external files are not supported")
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


def network_path(directory: Path, spec: NetworkSpec) -> Path:
    """The real path of a model file: ModelError when it is missing or leads outside `directory`."""
    with _file_errors(spec):
        return resolve_inside(directory / spec.file, directory)


def read_network(directory: Path, spec: NetworkSpec) -> bytes:
    """The bytes of a model file, read as untrusted input (see `model_files.read_model_file`).

    Raises ModelError naming the file: missing, refused (not a regular file, too large, outside the
    model's folder) or unreadable.
    """
    with _file_errors(spec):
        return read_model_file(directory / spec.file, directory, MAX_NETWORK_BYTES)


@contextlib.contextmanager
def _file_errors(spec: NetworkSpec) -> Iterator[None]:
    """A model file's OSError (missing, refused, unreadable) as a ModelError naming the file."""
    try:
        yield
    except FileNotFoundError as exc:
        raise ModelError(f"{spec.file}: file not found") from exc
    except UnsafeFileError as exc:
        raise ModelError(f"{spec.file}: {exc}") from exc
    except OSError as exc:
        raise ModelError(f"{spec.file}: cannot read ({exc.strerror or exc})") from exc


def _model_folders(folder: Path) -> list[tuple[Path, str | None]]:
    """The sub-folders of `folder` that hold a manifest.json (of any file type: a FIFO is reported, not
    skipped), in name order, each with None or the reason it cannot be read.

    Raises OSError when `folder` itself cannot be listed. Sub-folders are found with os.scandir and
    os.stat: nothing is opened here, so nothing can block.
    """
    with os.scandir(folder) as listing:
        names = sorted(entry.name for entry in listing)
    found: list[tuple[Path, str | None]] = []
    for name in names:
        directory = folder / name
        try:
            if not stat.S_ISDIR(os.stat(directory).st_mode):
                continue
        except OSError:
            continue  # a dangling link or a link loop beside the models: not a model folder
        try:
            os.lstat(directory / MANIFEST_FILE)
        except OSError as exc:
            if exc.errno not in _ABSENT:  # the folder may hold a model that cannot be read
                found.append((directory, f"cannot read the folder ({exc.strerror or exc})"))
            continue
        found.append((directory, None))
    return found


def _exists(path: Path) -> bool:
    """Whether anything (a dangling link included) is at `path`: a missing folder is no problem."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _unavailable(directory: Path, reason: str) -> ModelEntry:
    """An entry for a folder whose manifest could not be read: named after the folder (made printable)."""
    return ModelEntry(shown(directory.name), directory, None, shown(reason))


def _uses_external_data(model: onnx.ModelProto) -> bool:
    """Whether any tensor of the main graph keeps its data in another file (which could be anywhere)."""
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        for attribute in node.attribute:
            tensors.extend([attribute.t, *attribute.tensors])
    return any(tensor.data_location == onnx.TensorProto.EXTERNAL for tensor in tensors)


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
