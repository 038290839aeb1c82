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
takes only the transformed face. `file` is relative to the manifest's folder and must stay inside it (a
symlink is followed only where it leads to a file inside the folder; share a file with a hard link).

A manifest is untrusted input, and `load` reads it as such: only a regular file of at most
`MAX_MANIFEST_BYTES`, nested at most `MAX_NESTING` deep, is parsed. Every number the app uses is checked
(finite, within sane bounds: a 16384 px template would allocate gigabytes per photo) and every text a user
is shown (names, description, licence, tensor names) is refused when it holds a character that would
drive a terminal or reorder the text: control characters (C0 with ESC, DEL, C1), bidirectional controls,
lone surrogates, line separators (see `model_files.unsafe_character`).

`region_margin` (optional; written by exports since 2026-11-27) is the margin, in inter-ocular distances,
around the region's landmark hull that the model was trained with — the mask it is pasted through must be
the same (a local editor's output outside its training mask is anything). Without it, the region's
default (`regions.REGION_MARGIN`), which every earlier model was trained with.

`transform_passes` (optional, default 1; written only when more) is how many times the app runs the
transform on its own output before the last pass is enhanced and pasted back: each earlier pass is
composited into the crop through the same mask, so a remover can take off what its first pass left (a
fainter frame) and nothing outside the mask ever changes. The evaluation measures the model with it.

`mirror_average` (optional, default false; written only when true) makes every run of the transform see
the face twice, as it is and mirrored, and average the two outputs (the mirrored one flipped back): an
editor's misses on the two views are not the same, so the average leaves fainter ghosts than either.

`experimental` (optional, default false; written only when true) marks an edit that does not pass its
quality bar yet: it stays installed, but the app's edit list and the batch command hide it unless the user
asks for experimental models (Settings → Show experimental models, `--experimental`).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path
from typing import Any, Literal

from diat_studio.core.alignment import CanonicalTemplate
from diat_studio.core.errors import ModelError
from diat_studio.core.model_files import UnsafeFileError, read_model_file, shown, unsafe_character
from diat_studio.core.regions import RegionKind

MANIFEST_FILE = "manifest.json"
#: A margin of more than this many inter-ocular distances around a region would cover the whole photo.
MAX_REGION_MARGIN = 1.5
#: Every pass is a whole transform: more than this is a mistake, not a model.
MAX_TRANSFORM_PASSES = 4
FORMAT_VERSION = 1

#: A manifest is a few kilobytes; anything near this is not one.
MAX_MANIFEST_BYTES = 1 << 20
#: JSON nesting deeper than this is refused before parsing (Python's parser recurses).
MAX_NESTING = 64
#: Template (crop) sides a model may declare, in pixels.
MIN_CROP_SIZE, MAX_CROP_SIZE = 32, 1024
#: Bounds of `value_range`: [0, 1], [-1, 1] and [0, 255] are usual; far outside is a broken manifest.
VALUE_LIMIT = 65536.0
MIN_VALUE_SPAN = 1e-3
#: Longest name, display name, attribute, template name or tensor name, in characters.
MAX_NAME_CHARS = 200
#: Longest description or licence, in characters.
MAX_TEXT_CHARS = 20_000
#: Metrics the app shows as numbers (the edit list's tooltip).
SHOWN_METRICS = ("attribute_success_rate", "identity_kept_rate", "psnr_outside_mask_db")

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
    region_margin: float | None = None
    """The margin around the region's landmark hull the model was trained with (None: the default)."""
    transform_passes: int = 1
    """How many times the transform runs on its own composited output (see the module docstring)."""
    mirror_average: bool = False
    """Each transform run averages the face's and its mirror image's outputs (see the module docstring)."""

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
            **({"region_margin": self.region_margin} if self.region_margin is not None else {}),
            **({"transform_passes": self.transform_passes} if self.transform_passes != 1 else {}),
            **({"mirror_average": True} if self.mirror_average else {}),
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
        """Read `folder`/manifest.json as untrusted input (see the module docstring)."""
        path = Path(folder) / MANIFEST_FILE
        try:
            raw = read_model_file(path, Path(folder), MAX_MANIFEST_BYTES)
        except FileNotFoundError as exc:
            raise ManifestError(f"{path}: no manifest.json") from exc
        except UnsafeFileError as exc:
            raise ManifestError(f"{path}: {exc}") from exc
        except OSError as exc:
            raise ManifestError(f"{path}: cannot read the manifest ({exc.strerror or exc})") from exc
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ManifestError(f"{path}: unreadable manifest (not UTF-8: {exc})") from exc
        depth = _nesting_depth(text)
        if depth > MAX_NESTING:
            raise ManifestError(f"{path}: unreadable manifest (nested more than {MAX_NESTING} levels deep)")
        try:
            data = json.loads(text)
        except RecursionError as exc:
            raise ManifestError(f"{path}: unreadable manifest (nested too deeply)") from exc
        except ValueError as exc:  # JSONDecodeError, and integers with too many digits
            raise ManifestError(f"{path}: unreadable manifest ({exc})") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> ModelManifest:
        """Validate a parsed manifest; raises ManifestError naming the first problem found."""
        if not isinstance(data, dict):
            raise ManifestError("manifest must be a JSON object")
        version = data.get("format_version", FORMAT_VERSION)
        if isinstance(version, bool) or version != FORMAT_VERSION:
            raise ManifestError(
                f"manifest format_version {_quoted(version)} is not supported (expected {FORMAT_VERSION})"
            )
        kind = _choice(data, "kind", ("local", "global"))
        try:
            region = RegionKind(_require(data, "region", str))
        except ValueError as exc:
            choices = ", ".join(r.value for r in RegionKind)
            raise ManifestError(
                f"manifest: unknown region {_quoted(data.get('region'))} (one of {choices})"
            ) from exc
        template = _template(_require(data, "template", dict))
        value_range = _value_range(data.get("value_range", [-1.0, 1.0]))
        transform = _network(_require(data, "transform", dict), "transform", TRANSFORM_INPUTS)
        enhancer_data = data.get("enhancer")
        enhancer = None
        if enhancer_data is not None:
            roles = LOCAL_ENHANCER_INPUTS if kind == "local" else GLOBAL_ENHANCER_INPUTS
            enhancer = _network(enhancer_data, "enhancer", roles)
        experimental = data.get("experimental", False)
        if not isinstance(experimental, bool):
            raise ManifestError(
                f"manifest: 'experimental' must be true or false, got {_quoted(experimental)}"
            )
        region_margin = data.get("region_margin")
        if region_margin is not None:
            region_margin = _number(region_margin, "region_margin")
            if not 0.0 <= region_margin <= MAX_REGION_MARGIN:
                raise ManifestError(
                    f"manifest: region_margin must be within 0 and {MAX_REGION_MARGIN:g} inter-ocular "
                    f"distances, got {_quoted(data.get('region_margin'))}"
                )
        passes = data.get("transform_passes", 1)
        if isinstance(passes, bool) or not isinstance(passes, int) or not 1 <= passes <= MAX_TRANSFORM_PASSES:
            raise ManifestError(
                f"manifest: transform_passes must be a whole number from 1 to {MAX_TRANSFORM_PASSES}, "
                f"got {_quoted(passes)}"
            )
        mirror_average = data.get("mirror_average", False)
        if not isinstance(mirror_average, bool):
            raise ManifestError(
                f"manifest: 'mirror_average' must be true or false, got {_quoted(mirror_average)}"
            )
        name = _text(_require(data, "name", str), "name")
        if not name or "/" in name or "\\" in name or name in (".", "..") or name.strip() != name:
            raise ManifestError(f"manifest: bad model name {_quoted(name)}")
        return cls(
            name=name,
            display_name=_optional_text(data, "display_name") or name,
            attribute=_text(_require(data, "attribute", str), "attribute"),
            direction=_choice(data, "direction", ("add", "remove")),  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            region=region,
            template=template,
            transform=transform,
            enhancer=enhancer,
            value_range=value_range,
            description=_optional_text(data, "description", multiline=True),
            training=_object(data, "training"),
            metrics=_metrics(_object(data, "metrics")),
            licence=_optional_text(data, "licence", multiline=True),
            experimental=experimental,
            region_margin=region_margin,
            transform_passes=passes,
            mirror_average=mirror_average,
        )


#: A JSON string, or an unterminated one up to the end: always matches at a quote, so the scan stays linear
#: (a pattern that could fail would be retried from every later quote: quadratic on hostile text).
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def _nesting_depth(text: str) -> int:
    """How deep `text`'s arrays and objects nest, brackets inside strings left out, in linear time."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    steps = (1 if char in "[{" else -1 for char in brackets)
    return max(accumulate(steps, initial=0))


def _quoted(value: object) -> str:
    """A value from the manifest, quoted for a message: printable and short."""
    text = shown(repr(value))
    return text if len(text) <= 80 else text[:77] + "…"


def _text(value: str, what: str, *, multiline: bool = False) -> str:
    """A text a user may be shown: refused when it holds a character that is not safe to show."""
    bad = unsafe_character(value, "\n\t" if multiline else "")
    if bad is not None:
        raise ManifestError(
            f"manifest: '{what}' contains the control character U+{ord(bad):04X}, which is not allowed "
            "in text that is shown"
        )
    limit = MAX_TEXT_CHARS if multiline else MAX_NAME_CHARS
    if len(value) > limit:
        raise ManifestError(f"manifest: '{what}' is longer than {limit} characters")
    return value


def _optional_text(data: dict[str, Any], key: str, *, multiline: bool = False) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ManifestError(f"manifest: '{key}' must be a string, got {type(value).__name__}")
    return _text(value, key, multiline=multiline)


def _object(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(f"manifest: '{key}' must be an object, got {type(value).__name__}")
    return dict(value)


def _number(value: Any, what: str) -> float:
    """A finite real number (a JSON number, not true/false, NaN or ±Infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ManifestError(f"manifest: {what} must be a number, got {_quoted(value)}")
    try:
        number = float(value)
    except OverflowError as exc:  # an integer beyond float range
        raise ManifestError(f"manifest: {what} must be a finite number, got {_quoted(value)}") from exc
    if not math.isfinite(number):
        raise ManifestError(f"manifest: {what} must be a finite number, got {value!r}")
    return number


def _template(data: dict[str, Any]) -> CanonicalTemplate:
    size = data.get("size", CanonicalTemplate.size)
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_CROP_SIZE <= size <= MAX_CROP_SIZE:
        raise ManifestError(
            f"manifest: bad template (size must be a whole number of pixels from {MIN_CROP_SIZE} to "
            f"{MAX_CROP_SIZE}, got {_quoted(size)})"
        )
    values: dict[str, Any] = {"size": size}
    for key in ("eye_distance", "eye_center_y"):
        if key in data:
            values[key] = _number(data[key], f"template.{key}")
    if "name" in data:
        if not isinstance(data["name"], str):
            raise ManifestError(f"manifest: 'template.name' must be a str, got {type(data['name']).__name__}")
        values["name"] = _text(data["name"], "template.name")
    try:
        return CanonicalTemplate(**values)
    except (TypeError, ValueError) as exc:
        raise ManifestError(f"manifest: bad template ({exc})") from exc


def _value_range(value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ManifestError(f"manifest: value_range must be [low, high], got {_quoted(value)}")
    low, high = (_number(v, "value_range") for v in value)
    if not -VALUE_LIMIT <= low < high <= VALUE_LIMIT or high - low < MIN_VALUE_SPAN:
        raise ManifestError(
            f"manifest: value_range must be [low, high] with low < high, both within ±{VALUE_LIMIT:g} and at "
            f"least {MIN_VALUE_SPAN:g} apart, got {_quoted(value)}"
        )
    return low, high


def _metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics the app shows must be finite numbers; the rest is free-form (for model cards)."""
    for key in SHOWN_METRICS:
        if key in metrics:
            _number(metrics[key], f"metrics.{key}")
    return metrics


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
        raise ManifestError(f"manifest: '{key}' must be one of {', '.join(choices)}, got {_quoted(value)}")
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
    _text(file, f"{what}.file")
    if os.path.isabs(file) or "\\" in file or ".." in file.split("/"):
        raise ManifestError(
            f"manifest: {what}.file must be a path inside the model's folder, got {_quoted(file)}"
        )
    if not isinstance(sha, str) or len(sha) != 64 or not all(c in "0123456789abcdefABCDEF" for c in sha):
        raise ManifestError(f"manifest: {what}.sha256 must be 64 hex digits")
    if not isinstance(inputs, dict) or not all(isinstance(v, str) for v in inputs.values()):
        raise ManifestError(f"manifest: {what}.inputs must map roles to tensor names")
    missing = sorted(set(roles) - set(inputs))
    if missing:
        raise ManifestError(f"manifest: {what}.inputs lacks {', '.join(missing)} (needs {', '.join(roles)})")
    if not isinstance(output, str) or not output:
        raise ManifestError(f"manifest: {what}.output is missing")
    names = {role: _text(inputs[role], f"{what}.inputs.{role}") for role in roles}
    return NetworkSpec(file=file, sha256=sha.lower(), inputs=names, output=_text(output, f"{what}.output"))
