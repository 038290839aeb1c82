"""The fixture model's manifest as data, and copies of it with one value changed (manifest tests)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from diat_studio.core.manifest import MANIFEST_FILE


def fixture_manifest(models_root: Path) -> dict:
    """The `redden-mouth` fixture model's manifest.json, parsed."""
    return json.loads((models_root / "redden-mouth" / MANIFEST_FILE).read_text())


def with_value(data: dict, path: str, value: object) -> dict:
    """A deep copy of `data` with the dotted `path` set to `value`."""
    changed = copy.deepcopy(data)
    *parents, last = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    target[last] = value
    return changed
