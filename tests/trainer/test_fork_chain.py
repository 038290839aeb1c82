"""A model forked through several edit runs (`--init-transform RUN`, then a run from that run) records the
whole chain in its manifest, and the card and the README table count every run's steps."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.trainer.conftest import TINY_EDIT_RUN, train_new_run
from trainer.cli import EXIT_OK, main

REPOSITORY = Path(__file__).resolve().parents[2]


def test_a_chain_of_forked_runs_is_counted_whole(tmp_path: Path, dataset_dir: Path) -> None:
    base = (
        "--stage", "edit", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--direction", "remove",
        "--region", "eyes", "--gan-loss", "hinge", "--transform-width", "4",
    )  # fmt: skip
    runs = tmp_path / "runs"
    first = train_new_run(runs, (*base, "--steps", "3"), TINY_EDIT_RUN)
    second = train_new_run(runs, (*base, "--steps", "2", "--init-transform", str(first)), TINY_EDIT_RUN)
    third = train_new_run(runs, (*base, "--steps", "1", "--init-transform", str(second)), TINY_EDIT_RUN)

    folder = tmp_path / "models" / "glasses-chain"
    assert main(["export", str(third), "--out", str(folder), "--name", "glasses-chain"]) == EXIT_OK
    transform = json.loads((folder / "manifest.json").read_text())["training"]["transform"]
    assert transform["run"].endswith(third.name) and transform["steps"] == 1
    earlier = transform["continued_from"]
    assert earlier["run"] == str(second) and earlier["steps"] == 2
    oldest = earlier["continued_from"]
    assert oldest["run"] == str(first) and oldest["steps"] == 3
    assert "continued_from" not in oldest  # the first run started from the identity

    card = subprocess.run(
        [sys.executable, "scripts/write_model_card.py", str(folder), "--out", str(tmp_path / "cards")],
        cwd=REPOSITORY, capture_output=True, text=True,
    )  # fmt: skip
    assert card.returncode == 0, card.stderr
    card_lines = (tmp_path / "cards" / "glasses-chain.md").read_text().splitlines()
    rows = [row for row in card_lines if row.startswith("| transform")]
    assert [row.split(" | ")[0] for row in rows] == [
        "| transform, the session it continues",
        "| transform, the session it continues",
        "| transform (edit)",
    ]
    assert [row.split(" | ")[2] for row in rows] == ["3", "2", "1"]  # the oldest first

    table = subprocess.run(
        [sys.executable, "scripts/models_table.py", str(folder.parent)],
        cwd=REPOSITORY, check=True, capture_output=True, text=True,
    )  # fmt: skip
    (row,) = [line for line in table.stdout.splitlines() if "glasses-chain" in line]
    assert row.split(" | ")[2] == "3 + 2 + 1"
