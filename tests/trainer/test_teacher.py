"""`--teacher` / `--teacher-weight`: an edit run held to a frozen editor's edit inside the region
(trainer.losses.teacher_penalty), so that a new term can clean a shipped model without a discriminator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.trainer.conftest import BUNDLED_MODELS, TINY_EDIT_RUN, train_new_run
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.losses import teacher_penalty
from trainer.model_import import editor_state
from trainer.runs import network_state

MODELS = BUNDLED_MODELS
GLASSES = MODELS / "remove-eyeglasses"


def test_the_teacher_penalty_counts_only_where_the_region_is() -> None:
    """A difference where m = 0 costs nothing, one inside the region its mean absolute value (per pixel of
    the region, per channel); a global edit counts the whole crop."""
    out = torch.zeros(2, 3, 8, 8)
    taught = torch.zeros(2, 3, 8, 8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1.0
    taught[:, :, :2] = 1.0  # outside the region only
    assert teacher_penalty(out, taught, mask).item() == 0.0
    assert teacher_penalty(out, taught).item() == pytest.approx(0.25)
    taught[:, 0, 2:6, 2:6] = 0.6  # one channel inside the region
    assert teacher_penalty(out, taught, mask).item() == pytest.approx(0.2)
    half = mask * 0.5
    assert teacher_penalty(out, taught, half).item() == pytest.approx(0.2)  # a mean over the mask's weight


def _edit(dataset_dir: Path) -> list[str]:
    return [
        "--stage", "edit", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--direction", "remove",
        "--region", "eyes", "--gan-loss", "hinge", "--steps", "2",
    ]  # fmt: skip


def test_a_teacher_is_checked_up_front(capsys, dataset_dir: Path) -> None:
    base = _edit(dataset_dir)
    assert main(["train", *base, "--teacher", str(GLASSES), "--dry-run"]) == EXIT_USAGE
    assert "--teacher without --teacher-weight does nothing" in capsys.readouterr().err
    assert main(["train", *base, "--teacher-weight", "30", "--dry-run"]) == EXIT_USAGE
    assert "--teacher-weight needs --teacher" in capsys.readouterr().err
    closing = ["--teacher", str(MODELS / "close-mouth"), "--teacher-weight", "30", "--dry-run"]
    assert main(["train", *base, *closing]) == EXIT_USAGE
    assert (
        "was trained to Mouth_Slightly_Open remove mouth; this run trains Eyeglasses remove eyes"
        in capsys.readouterr().err
    )
    missing = ["--teacher", str(MODELS / "no-such-model"), "--teacher-weight", "30", "--dry-run"]
    assert main(["train", *base, *missing]) == EXIT_USAGE
    assert "--teacher" in capsys.readouterr().err
    assert main(["train", *base, "--teacher", str(GLASSES), "--teacher-weight", "30", "--dry-run"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["teacher"] == str(GLASSES)


def _losses(run: Path) -> list[dict[str, float]]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [json.loads(line)["losses"] for line in lines if '"losses"' in line]


def test_a_taught_run_starts_at_its_teacher_and_leaves_d_alone(tmp_path: Path, dataset_dir: Path) -> None:
    """Continued from the model it is taught by, T's first step has nothing to learn from the teacher (the
    same editor); T then moves (its other terms) and the teacher pulls. With the adversarial term off, D
    is neither trained nor asked: its weights are those it started from."""
    runs = tmp_path / "runs"
    base = _edit(dataset_dir)
    with_d = train_new_run(runs, (*base, "--init-transform", str(GLASSES), "--steps", "1"), TINY_EDIT_RUN)
    assert "d" in _losses(with_d)[0]
    taught = (
        *base,
        "--init-transform", str(GLASSES), "--init-discriminator", str(with_d),
        "--teacher", str(GLASSES), "--teacher-weight", "30", "--outside-weight", "30",
        "--adversarial-weight", "0", "--colour-detail-weight", "10", "--lr", "1e-3", "--steps", "3",
    )  # fmt: skip
    run = train_new_run(runs, taught, TINY_EDIT_RUN)
    losses = _losses(run)
    assert [entry["teacher"] == 0.0 for entry in losses] == [True, False, False]
    assert all("d" not in entry and "r1" not in entry for entry in losses)
    assert all(entry["colour_detail"] > 0 and entry["outside"] > 0 for entry in losses)
    for name in ("discriminator", "region_discriminator"):
        before, after = network_state(with_d, name), network_state(run, name)
        assert all(torch.equal(before[key], after[key]) for key in before), name
    editor, model = network_state(run, "editor"), editor_state(GLASSES)
    assert any(not torch.allclose(editor[key], model[key]) for key in model)  # T did train
