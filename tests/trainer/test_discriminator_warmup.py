"""`--discriminator-warmup N`: an edit run's first N steps train D alone against the editor it starts from
(trainer.edit_stage.EditStage.step), so that a model continued with a fresh D meets one that knows it."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tests.trainer.conftest import BUNDLED_MODELS
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.config import TrainConfig
from trainer.model_import import editor_state
from trainer.runs import CONFIG_FILE, network_state, new_run_folder
from trainer.training_loop import training_loop

GLASSES = BUNDLED_MODELS / "remove-eyeglasses"


def _edit(dataset_dir: Path, *extra: str) -> list[str]:
    return [
        "train", "--stage", "edit", "--data", str(dataset_dir), "--attribute", "Eyeglasses",
        "--direction", "remove", "--region", "eyes", "--gan-loss", "hinge", "--dry-run", *extra,
    ]  # fmt: skip


def test_a_warmup_is_checked_up_front(capsys, dataset_dir: Path) -> None:
    assert main(_edit(dataset_dir, "--steps", "5", "--discriminator-warmup", "-1")) == EXIT_USAGE
    assert "--discriminator-warmup -1: 0 (off) or more" in capsys.readouterr().err
    no_d = ("--steps", "5", "--discriminator-warmup", "2", "--adversarial-weight", "0")
    assert main(_edit(dataset_dir, *no_d)) == EXIT_USAGE
    assert "--adversarial-weight 0 never asks it" in capsys.readouterr().err
    assert main(_edit(dataset_dir, "--steps", "5", "--discriminator-warmup", "5")) == EXIT_USAGE
    assert "leaves no step for the editor (--steps 5)" in capsys.readouterr().err
    assert main(_edit(dataset_dir, "--steps", "5", "--discriminator-warmup", "4")) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["discriminator_warmup"] == 4


def _losses(run: Path) -> list[dict[str, float]]:
    lines = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    return [line["losses"] for line in lines if "losses" in line]


def _installed_gate() -> float:
    """The installed editor's detail gate σ (a continued editor keeps its gate: trainer.model_import)."""
    manifest = json.loads((GLASSES / "manifest.json").read_text())
    return float(manifest["training"]["recipe"].get("detail_gate") or 0.0)


def test_the_warmup_trains_d_alone_then_t_goes_on(tmp_path: Path, dataset_dir: Path) -> None:
    """Stopped after the two warm-up steps, T and its average are still the installed model's weights
    while D has been trained; resumed, the third step trains T against that D."""
    config = TrainConfig(
        stage="edit", data=str(dataset_dir), attribute="Eyeglasses", direction="remove", region="eyes",
        gan_loss="hinge", steps=3, discriminator_warmup=2, batch_size=4, discriminator_width=4, lr=1e-3,
        init_transform=str(GLASSES), detail_gate=_installed_gate(), runs_dir=str(tmp_path / "runs"),
        device="cpu", threads=1,
        log_every=1, sample_every=10, checkpoint_every=1,
    )  # fmt: skip
    run = new_run_folder(tmp_path / "runs", "edit", "warmup")
    (run / CONFIG_FILE).write_text(config.to_json())
    steps_done = []
    result = training_loop(
        config,
        run,
        progress=lambda step, *_: steps_done.append(step),
        should_abort=lambda: len(steps_done) == 2,
    )
    assert result["status"] == "aborted" and result["step"] == 2
    warmup = _losses(run)
    assert len(warmup) == 2
    assert all("d" in entry and "adversarial" in entry and "t_total" not in entry for entry in warmup)
    model = editor_state(GLASSES)
    for name in ("editor", "editor_ema"):
        weights = network_state(run, name)
        assert all(torch.equal(weights[key], model[key].to(weights[key].dtype)) for key in model), name

    assert training_loop(config, run, resume=True)["status"] == "done"
    last = _losses(run)[-1]
    assert "t_total" in last and "d" in last
    editor = network_state(run, "editor")
    assert any(not torch.allclose(editor[key], model[key].to(editor[key].dtype)) for key in model)
