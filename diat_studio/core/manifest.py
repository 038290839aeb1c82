"""The model manifest: the one contract between trainer and app (`manifest.json` beside the ONNX files).

Example::

    {
      "format_version": 1,
      "name": "remove-eyeglasses",
      "display_name": "Remove eyeglasses",
      "experimental": true,
      "attribute": "Eyeglasses",
      "direction": "remove",
      "kind": "local",
      "region": "eyes",
      "template": {"name": "diat-v1", "size": 128, "eye_distance": 0.25, "eye_center_y": 0.40},
      "value_range": [-1.0, 1.0],
      "transform": {"file": "transform.onnx", "sha256": "…", "inputs": {"image": "input"},
                    "output": "output"},
      "enhancer": {"file": "enhancer.onnx", "sha256": "…",
                   "inputs": {"transformed": "transformed", "original": "original", "mask": "mask"},
                   "output": "enhanced"},
      "training": {...}, "metrics": {...}, "licence": "…"
    }

Tensors are NCHW float32 RGB scaled to `value_range`; the mask input is N×1×H×W in [0, 1]. The enhancer
is optional. A local enhancer takes the transformed face, the original face and the mask; a global one
takes only the transformed face. `file` is relative to the manifest's folder (it may point to a shared
file such as `../global-enhancer/enhancer.onnx`).

`experimental` (optional, default false; written only when true) marks an edit that does not pass its
quality bar yet: it stays installed, but the app's edit list and the batch command hide it unless the user
asks for experimental models (Settings → Show experimental models, `--experimental`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from diat_studio.core.alignment import CanonicalTemplate
from diat_studio.core.errors import ModelError
from diat_studio.core.regions import RegionKind

MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1

ModelKind = Literal["local", "global"]
Direction = Literal["add", "remove"]

#: Input roles each network kind must declare, and the channel count of each.
TRANSFORM_INPUTS: dict[str, int] = {"image": 3}
LOCAL_ENHANCER_INPUTS: dict[str, int] = {"transformed": 3, "original": 3, "mask": 1}
GLOBAL_ENHANCER_INPUTS: dict[str, int] = {"transformed": 3}


class ManifestError(ModelError):
    """manifest.json is missing, unreadable or does not describe a usable model."""


@dataclass(frozen=True)
class NetworkSpec:
    """One ONNX file and the names of its tensors by role."""

    file: str
    sha256: str
    inputs: dict[str, str]
    output: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "inputs": dict(self.inputs), "output": self.output}


@dataclass(frozen=True)
class ModelManifest:
    name: str
    display_name: str
    attribute: str
    direction: Direction
    kind: ModelKind
    region: RegionKind
    template: CanonicalTemplate
    transform: NetworkSpec
    enhancer: NetworkSpec | None = None
    value_range: tuple[float, float] = (-1.0, 1.0)
    description: str = ""
    training: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    licence: str = ""
    experimental: bool = False
    """Does not pass its quality bar yet: hidden from lists unless experimental models are asked for."""

    @property
    def crop_size(self) -> int:
        return self.template.size

    @property
    def label(self) -> str:
        """The display name, marked "(experimental)" for an experimental model: what lists show."""
        return f"{self.display_name} (experimental)" if self.experimental else self.display_name

    def enhancer_roles(self) -> dict[str, int]:
        return LOCAL_ENHANCER_INPUTS if self.kind == "local" else GLOBAL_ENHANCER_INPUTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "display_name": self.display_name,
            **({"experimental": True} if self.experimental else {}),
            "attribute": self.attribute,
            "direction": self.direction,
            "kind": self.kind,
            "region": self.region.value,
            "template": self.template.to_dict(),
            "value_range": list(self.value_range),
            "transform": self.transform.to_dict(),
            "enhancer": self.enhancer.to_dict() if self.enhancer else None,
            "description": self.description,
            "training": self.training,
            "metrics": self.metrics,
            "licence": self.licence,
        }

    def save(self, folder: Path) -> Path:
        from diat_studio.core.image_io import atomic_write_bytes

        path = Path(folder) / MANIFEST_FILE
        atomic_write_bytes(path, (json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n").encode())
        return path

    @classmethod
    def load(cls, folder: Path) -> ModelManifest:
        path = Path(folder) / MANIFEST_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ManifestError(f"{path}: no manifest.json") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ManifestError(f"{path}: unreadable manifest ({exc})") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> ModelManifest:
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ManifestError(
                f"manifest format_version {version} is not supported (expected {FORMAT_VERSION})"
            )
        kind = _choice(data, "kind", ("local", "global"))
        try:
            region = RegionKind(_require(data, "region", str))
        except ValueError as exc:
            choices = ", ".join(r.value for r in RegionKind)
            raise ManifestError(
                f"manifest: unknown region {data.get('region')!r} (one of {choices})"
            ) from exc
        try:
            template = CanonicalTemplate.from_dict(_require(data, "template", dict))
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"manifest: bad template ({exc})") from exc
        value_range = data.get("value_range", [-1.0, 1.0])
        if (
            not isinstance(value_range, list | tuple)
            or len(value_range) != 2
            or not all(isinstance(v, int | float) for v in value_range)
            or value_range[0] >= value_range[1]
        ):
            raise ManifestError(f"manifest: value_range must be [low, high], got {value_range!r}")
        transform = _network(_require(data, "transform", dict), "transform", TRANSFORM_INPUTS)
        enhancer_data = data.get("enhancer")
        enhancer = None
        if enhancer_data is not None:
            roles = LOCAL_ENHANCER_INPUTS if kind == "local" else GLOBAL_ENHANCER_INPUTS
            enhancer = _network(enhancer_data, "enhancer", roles)
        experimental = data.get("experimental", False)
        if not isinstance(experimental, bool):
            raise ManifestError(f"manifest: 'experimental' must be true or false, got {experimental!r}")
        name = _require(data, "name", str)
        if not name or "/" in name or name.strip() != name:
            raise ManifestError(f"manifest: bad model name {name!r}")
        return cls(
            name=name,
            display_name=str(data.get("display_name") or name),
            attribute=_require(data, "attribute", str),
            direction=_choice(data, "direction", ("add", "remove")),  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            region=region,
            template=template,
            transform=transform,
            enhancer=enhancer,
            value_range=(float(value_range[0]), float(value_range[1])),
            description=str(data.get("description", "")),
            training=dict(data.get("training") or {}),
            metrics=dict(data.get("metrics") or {}),
            licence=str(data.get("licence", "")),
            experimental=experimental,
        )


def _require(data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise ManifestError(f"manifest: missing '{key}'")
    value = data[key]
    if not isinstance(value, kind):
        raise ManifestError(f"manifest: '{key}' must be a {kind.__name__}, got {type(value).__name__}")
    return value


def _choice(data: dict[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = _require(data, key, str)
    if value not in choices:
        raise ManifestError(f"manifest: '{key}' must be one of {', '.join(choices)}, got {value!r}")
    return value


def _network(data: Any, what: str, roles: dict[str, int]) -> NetworkSpec:
    if not isinstance(data, dict):
        raise ManifestError(f"manifest: '{what}' must be an object")
    file = data.get("file")
    sha = data.get("sha256")
    inputs = data.get("inputs")
    output = data.get("output")
    if not isinstance(file, str) or not file:
        raise ManifestError(f"manifest: {what}.file is missing")
    if not isinstance(sha, str) or len(sha) != 64:
        raise ManifestError(f"manifest: {what}.sha256 must be 64 hex digits")
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise ManifestError(f"manifest: {what}.inputs must map roles to tensor names")
    missing = sorted(set(roles) - set(inputs))
    if missing:
        raise ManifestError(f"manifest: {what}.inputs lacks {', '.join(missing)} (needs {', '.join(roles)})")
    if not isinstance(output, str) or not output:
        raise ManifestError(f"manifest: {what}.output is missing")
    return NetworkSpec(file=file, sha256=sha.lower(), inputs={k: inputs[k] for k in roles}, output=output)
