"""Run folders: `runs/00001-<stage>-<name>/` with config.json, log.jsonl, samples/ and checkpoints/."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

CONFIG_FILE = "config.json"
LOG_FILE = "log.jsonl"
STATUS_FILE = "status.json"
CHECKPOINT = "checkpoints/latest.pt"


class RunError(ValueError):
    pass


def new_run_folder(runs_dir: Path, stage: str, name: str = "") -> Path:
    """The next numbered folder under runs_dir (created atomically: two trainers never share one)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{stage}-{name}" if name else stage).strip("-")
    while True:
        numbers = [int(p.name[:5]) for p in runs_dir.iterdir() if p.name[:5].isdigit()]
        folder = runs_dir / f"{max(numbers, default=0) + 1:05d}-{slug}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def atomic_save(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def load_checkpoint(run: Path) -> dict[str, Any]:
    path = Path(run) / CHECKPOINT
    if not path.is_file():
        raise RunError(f"{run}: no checkpoint ({CHECKPOINT}) — has this run trained at least one checkpoint?")
    return torch.load(path, map_location="cpu", weights_only=False)


def run_config(run: Path) -> dict[str, Any]:
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise RunError(f"{run} is not a run folder (no {CONFIG_FILE})")
    return json.loads(path.read_text())


def network_state(run: Path, name: str) -> dict[str, torch.Tensor]:
    """The state dict of network `name` from a run's latest checkpoint."""
    checkpoint = load_checkpoint(run)
    networks = checkpoint.get("networks", {})
    if name not in networks:
        raise RunError(f"{run} has no network '{name}' (has: {', '.join(networks)})")
    return networks[name]


#: Settings whose change on resume says nothing about the model (how long, where, how fast, and the name
#: of a run branched from another by copying its folder).
UNRECORDED_ON_RESUME = frozenset(
    {"steps", "threads", "device", "log_every", "sample_every", "checkpoint_every", "name"}
)


def settings_changed(
    before: dict[str, Any], after: dict[str, Any], defaults: dict[str, Any] | None = None
) -> dict[str, list[Any]]:
    """{key: [value at the checkpoint, value now]} for every setting a resume changed (a run continued with a
    new loss weight or low-pass), except UNRECORDED_ON_RESUME.

    A setting newer than the checkpoint (absent from `before`) ran at its default, so it is compared with
    `defaults[key]`: without that, continuing an older run with a new option (a region margin added later)
    would leave no trace of the change. A key absent from both is not compared (nothing is known of it)."""
    defaults = defaults or {}
    changed: dict[str, list[Any]] = {}
    for key, value in after.items():
        if key in UNRECORDED_ON_RESUME or (key not in before and key not in defaults):
            continue
        old = before[key] if key in before else defaults[key]
        if old != value:
            changed[key] = [old, value]
    return changed


def recipe_changes(run: Path) -> list[dict[str, Any]]:
    """The run's resumes that changed a setting: [{"step": S, "changed": {key: [old, new]}}], in order."""
    return [
        {"step": record["step"], "changed": record["changed"]}
        for record in JsonlLog(Path(run) / LOG_FILE).read()
        if record.get("event") == "resumed" and record.get("changed")
    ]


class JsonlLog:
    """Append-only JSON lines; on resume, lines past the checkpoint's step are dropped first."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, step: int) -> None:
        if not self.path.is_file():
            return
        kept = [
            line
            for line in self.path.read_text().splitlines()
            if line and json.loads(line).get("step", 0) <= step
        ]
        self.path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def write_status(run: Path, **status: Any) -> None:
    path = Path(run) / STATUS_FILE
    temp = path.with_suffix(".tmp")
    temp.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(temp, path)


def save_grid(columns: list[np.ndarray], path: Path, gap: int = 2) -> None:
    """Faces in rows, one column per image kind (e.g. input | output). Each column: N×H×W×3 uint8."""
    count, height, width = columns[0].shape[:3]
    grid = np.full((count * (height + gap) - gap, len(columns) * (width + gap) - gap, 3), 255, np.uint8)
    for col, images in enumerate(columns):
        for row in range(count):
            y, x = row * (height + gap), col * (width + gap)
            grid[y : y + height, x : x + width] = images[row]
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path)
