"""Exports never damage an installed model, `export --install` installs for the app, `classifier` says its
held-out accuracy, and `evaluate` warns (report, manifest, card) when its evaluator is near chance."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diat_studio.core.regions import REGION_MARGIN, RegionKind
from diat_studio.core.registry import ModelRegistry
from tests.trainer.conftest import train_new_run
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.data import BatchSampler, PreparedDataset
from trainer.runs import CHECKPOINT, JsonlLog, settings_changed

REPO = Path(__file__).resolve().parents[2]
TINY = ["--batch-size", "4", "--log-every", "1", "--sample-every", "1000", "-q"]
SMALL_EVALUATION = [
    "--two-sample-steps",
    "4",
    "--grey-faces",
    "2",
    "--already-target",
    "2",
    "--grid-faces",
    "2",
]


def train(runs: Path, *arguments: str) -> Path:
    return train_new_run(runs, arguments, TINY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> dict[str, Path]:
    """A 2-step local `edit` run (eyes), a classify run, and an evaluator run."""
    folder = tmp_path_factory.mktemp("export-runs")
    data = ["--data", str(dataset_dir), "--attribute", "Eyeglasses", "--direction", "remove"]
    widths = ["--transform-width", "4", "--discriminator-width", "4"]
    out = {
        "edit": train(folder, "--stage", "edit", *data, "--region", "eyes", "--steps", "2", *widths),
        "classify": train(folder, "--stage", "classify", *data, "--steps", "2", *widths),
    }
    classifier = ["classifier", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--steps", "3"]
    assert (
        main([*classifier, "--classifier-width", "4", "--batch-size", "8", "--runs-dir", str(folder), "-q"])
        == 0
    )
    out["evaluator"] = max(folder.iterdir())
    return out


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_failed_export_leaves_the_installed_model_alone(capsys, tmp_path: Path, runs) -> None:
    model = tmp_path / "models" / "remove-glasses"
    assert main(["export", str(runs["edit"]), "--out", str(model)]) == EXIT_OK
    (model / "evaluation.json").write_text("{}")  # what evaluate added: a re-export keeps it
    before = _hashes(model)
    # fails after the transform is exported: a local edit needs an enhance-local run, not a classify run
    assert main(["export", str(runs["edit"]), "--out", str(model), "--enhancer", str(runs["classify"])]) == 2
    assert "needs an enhance-local run" in capsys.readouterr().err
    assert _hashes(model) == before
    assert ModelRegistry([model.parent]).get("remove-glasses").available
    assert [p.name for p in model.parent.iterdir()] == ["remove-glasses"]  # no staging folder left
    assert main(["export", str(runs["edit"]), "--out", str(model), "--display-name", "Glasses off"]) == 0
    assert (model / "evaluation.json").read_text() == "{}"
    assert ModelRegistry([model.parent]).get("remove-glasses").manifest.display_name == "Glasses off"


def test_a_run_made_before_a_recipe_option_existed_still_exports(tmp_path: Path, runs) -> None:
    """Run folders written by an older trainer lack the newer recipe keys; they did not use them."""
    old = tmp_path / "old-run"
    shutil.copytree(runs["edit"], old)
    config = json.loads((old / "config.json").read_text())
    for key in ("keep_weight", "edge_weight", "delta_lowpass"):
        config.pop(key)
    (old / "config.json").write_text(json.dumps(config))
    model = tmp_path / "models" / "old-glasses"
    assert main(["export", str(old), "--out", str(model)]) == EXIT_OK
    training = ModelRegistry([model.parent]).get("old-glasses").manifest.training
    assert training["weights"]["keep_weight"] == 0.0 and training["weights"]["edge_weight"] == 0.0
    assert training["recipe"]["delta_lowpass"] == 0.0


def test_export_install(capsys, runs, isolated_user_dirs: Path) -> None:
    from diat_studio.core.paths import user_models_dir

    assert main(["export", str(runs["edit"]), "--install", "--name", "my-glasses"]) == EXIT_OK
    entry = ModelRegistry.default().get("my-glasses")
    assert entry.available and entry.directory == user_models_dir() / "my-glasses"
    assert main(["export", str(runs["edit"]), "--install", "--name", "my-glasses"]) == EXIT_USAGE
    assert "already installed" in capsys.readouterr().err
    assert main(["export", str(runs["edit"]), "--install", "--name", "my-glasses", "--force"]) == EXIT_OK
    assert ModelRegistry.default().get("my-glasses").available


def test_classifier_prints_its_held_out_accuracy(capsys, tmp_path: Path, dataset_dir: Path) -> None:
    arguments = ["classifier", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--steps", "2"]
    runs = tmp_path / "runs"
    assert (
        main([*arguments, "--classifier-width", "4", "--batch-size", "8", "--runs-dir", str(runs), "-q"]) == 0
    )
    (run,) = runs.iterdir()
    accuracy = [r["heldout"] for r in JsonlLog(run / "log.jsonl").read() if "heldout" in r][-1]
    shown = f"held-out balanced accuracy {100 * accuracy['heldout_balanced_accuracy']:.1f}%"
    assert shown in capsys.readouterr().out


@pytest.mark.parametrize(("accuracy", "near_chance"), [(0.507, True), (0.93, False)])
def test_evaluate_warns_when_the_evaluator_is_near_chance(
    capsys, tmp_path: Path, dataset_dir: Path, runs, accuracy: float, near_chance: bool
) -> None:
    evaluator = tmp_path / "evaluator"
    subprocess.run(["cp", "-r", str(runs["evaluator"]), str(evaluator)], check=True)
    JsonlLog(evaluator / "log.jsonl").write({"step": 3, "heldout": {"heldout_balanced_accuracy": accuracy}})
    model = tmp_path / "models" / "remove-glasses"
    assert main(["export", str(runs["edit"]), "--out", str(model)]) == EXIT_OK
    evaluate = ["evaluate", str(model), "--data", str(dataset_dir), "--classifier", str(evaluator)]
    assert main([*evaluate, *SMALL_EVALUATION]) == EXIT_OK
    error = capsys.readouterr().err
    assert ("WARNING" in error and "near chance" in error) is near_chance
    report = json.loads((model / "evaluation.json").read_text())
    assert bool(report["warnings"]) is near_chance
    assert (
        json.loads((model / "manifest.json").read_text())["metrics"]["evaluator_near_chance"] is near_chance
    )
    cards = tmp_path / "cards"
    script = [sys.executable, "scripts/write_model_card.py", str(model), "--out", str(cards)]
    subprocess.run(script, cwd=REPO, check=True, capture_output=True)
    card = (cards / "remove-glasses.md").read_text()
    assert (
        "the evaluator classifier is near chance** (held-out balanced accuracy 50.7%" in card
    ) is near_chance


def test_a_setting_changed_on_resume_is_kept_in_the_log_the_manifest_and_the_card(
    tmp_path: Path, runs
) -> None:
    """config.json keeps only the last value of a loss weight: when it changed must not be lost."""
    run = tmp_path / "runs" / runs["edit"].name
    shutil.copytree(runs["edit"], run)
    assert main(["train", "--resume", str(run), "--steps", "3", "--edge-weight", "2", "-q"]) == EXIT_OK
    assert main(["train", "--resume", str(run), "--steps", "4", "-q"]) == EXIT_OK  # nothing changed
    resumes = [r for r in JsonlLog(run / "log.jsonl").read() if r.get("event") == "resumed"]
    assert resumes == [
        {"step": 2, "event": "resumed", "changed": {"edge_weight": [0.0, 2.0]}},
        {"step": 3, "event": "resumed"},
    ]
    model = tmp_path / "models" / "remove-glasses"
    assert main(["export", str(run), "--out", str(model)]) == EXIT_OK
    transform = json.loads((model / "manifest.json").read_text())["training"]["transform"]
    assert transform["recipe_changes"] == [{"step": 2, "changed": {"edge_weight": [0.0, 2.0]}}]
    cards = tmp_path / "cards"
    script = [sys.executable, "scripts/write_model_card.py", str(model), "--out", str(cards)]
    subprocess.run(script, cwd=REPO, check=True, capture_output=True)
    assert "- resumed at step 2 with edge_weight 0.0 → 2.0" in (cards / "remove-glasses.md").read_text()


def test_a_setting_newer_than_the_checkpoint_is_recorded_against_the_default_it_ran_with(
    tmp_path: Path, runs
) -> None:
    """An older run continued with an option added since (its checkpoint's config lacks the key) trained
    at that option's default until the resume: the change must be recorded, not skipped."""
    run = tmp_path / "runs" / runs["edit"].name
    shutil.copytree(runs["edit"], run)
    checkpoint = run / CHECKPOINT
    state = torch.load(checkpoint, weights_only=False)
    for key in ("region_margin", "outside_weight"):
        del state["config"][key]  # as written before these settings existed
    torch.save(state, checkpoint)
    resume = ["train", "--resume", str(run), "--steps", "3", "-q"]
    assert main([*resume, "--region-margin", "0.45", "--outside-weight", "1"]) == EXIT_OK
    resumed = [r for r in JsonlLog(run / "log.jsonl").read() if r.get("event") == "resumed"]
    assert resumed == [
        {
            "step": 2,
            "event": "resumed",
            "changed": {"region_margin": [None, 0.45], "outside_weight": [0.0, 1.0]},
        }
    ]


def test_settings_changed_compares_a_missing_key_with_its_default_and_skips_what_is_unknown() -> None:
    before = {"edge_weight": 0.0, "steps": 10, "name": "close-mouth"}
    after = {
        "edge_weight": 2.0,
        "steps": 20,
        "name": "close-mouth-branch",  # a copied run folder, renamed: not a setting of the model
        "outside_weight": 1.0,
        "region_margin": None,
        "novel": 3,
    }
    defaults = {"outside_weight": 0.0, "region_margin": None}
    assert settings_changed(before, after, defaults) == {
        "edge_weight": [0.0, 2.0],
        "outside_weight": [0.0, 1.0],
    }
    assert settings_changed(before, after) == {"edge_weight": [0.0, 2.0]}


def test_the_manifest_records_the_region_margin_the_masks_were_drawn_with(tmp_path: Path, runs) -> None:
    """Default margin (an older run's too) and an explicit one: the app must paste through the same mask."""
    model = tmp_path / "models" / "default"
    assert main(["export", str(runs["edit"]), "--out", str(model)]) == EXIT_OK
    assert (
        json.loads((model / "manifest.json").read_text())["region_margin"] == REGION_MARGIN[RegionKind.EYES]
    )
    wide = tmp_path / "runs" / runs["edit"].name  # the same run, continued with a wider region
    shutil.copytree(runs["edit"], wide)
    assert main(["train", "--resume", str(wide), "--steps", "3", "--region-margin", "0.45", "-q"]) == EXIT_OK
    model = tmp_path / "models" / "wide"
    assert main(["export", str(wide), "--out", str(model)]) == EXIT_OK
    assert json.loads((model / "manifest.json").read_text())["region_margin"] == 0.45


def test_training_masks_take_the_runs_margin(dataset_dir: Path) -> None:
    dataset = PreparedDataset.open(dataset_dir)
    rows = np.arange(4)
    masks = {
        margin: BatchSampler(dataset, rows, 4, 0, False, RegionKind.EYES, 0.15, margin).load(rows)["mask"]
        for margin in (None, REGION_MARGIN[RegionKind.EYES], 0.45)
    }
    assert torch.equal(masks[None], masks[REGION_MARGIN[RegionKind.EYES]])
    assert masks[0.45].sum() > 1.3 * masks[None].sum()
    assert bool((masks[0.45] >= masks[None] - 1e-6).all())  # the wider region holds the default one
