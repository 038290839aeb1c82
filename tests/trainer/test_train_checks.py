"""`train` checks everything it can before a run folder is made (trainer/checks.py), and a failed run
leaves no folder behind."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from diat_studio.core.registry import ModelRegistry
from tests.trainer.conftest import train_new_run
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.config import LOCAL_REGIONS
from trainer.edit_stage import REGION_BOXES
from trainer.runs import CHECKPOINT, JsonlLog, load_checkpoint
from trainer.stages import STAGES

TINY = ["--batch-size", "4", "--log-every", "1", "--sample-every", "1000", "--checkpoint-every", "1000", "-q"]
GLASSES = ["--attribute", "Eyeglasses", "--direction", "remove"]


def train(runs: Path, *arguments: str) -> Path:
    return train_new_run(runs, arguments, TINY)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> dict[str, Path]:
    """A width-4 reconstruct run and a width-4 classify run (2 steps each)."""
    folder = tmp_path_factory.mktemp("check-runs")
    data = ["--data", str(dataset_dir), "--steps", "2"]
    return {
        "reconstruct": train(folder, "--stage", "reconstruct", *data, "--transform-width", "4"),
        "classify": train(folder, "--stage", "classify", *data, *GLASSES, "--discriminator-width", "4"),
    }


def test_local_regions_are_the_ones_the_region_discriminator_knows() -> None:
    assert {region.value for region in REGION_BOXES} == set(LOCAL_REGIONS)


@pytest.mark.parametrize("dry_run", [False, True])
def test_an_unknown_region_is_refused_up_front_with_the_valid_ones(
    capsys, tmp_path: Path, dataset_dir: Path, dry_run: bool
) -> None:
    runs = tmp_path / "runs"
    arguments = ["train", "--stage", "edit", "--data", str(dataset_dir), *GLASSES, "--region", "chin"]
    assert main([*arguments, "--runs-dir", str(runs), *(["--dry-run"] if dry_run else [])]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "'chin'" in error and "mouth, eyes" in error
    assert not runs.exists()  # refused before a run folder was made, not after training


def test_inner_detail_and_the_region_box_are_for_local_edits_and_d_starts_from_an_edit_run(
    capsys, dataset_dir: Path, runs
) -> None:
    arguments = ["train", "--stage", "edit", "--data", str(dataset_dir), *GLASSES, "--dry-run"]
    for region in ([], ["--region", "eyes"]):
        assert main([*arguments, *region, "--inner-detail-weight", "10"]) == EXIT_USAGE
        assert "--inner-detail-weight (the teeth a closed mouth hides) is for mouth edits only" in (
            capsys.readouterr().err
        )
    assert main([*arguments, "--region", "mouth", "--inner-detail-weight", "10"]) == EXIT_OK
    assert '"inner_detail_weight": 10.0' in capsys.readouterr().out
    for region in ([], ["--region", "eyes"]):
        assert main([*arguments, *region, "--green-weight", "100"]) == EXIT_USAGE
        assert "--green-weight (a mouth is never greener than red) is for mouth edits only" in (
            capsys.readouterr().err
        )
    assert main([*arguments, "--region", "mouth", "--green-weight", "100"]) == EXIT_OK
    assert '"green_weight": 100.0' in capsys.readouterr().out
    mouth_priors = (  # mouth edits, closing and opening alike: (flag, value, field, why)
        ("--lip-colour-weight", "50", "lip_colour_weight", "the lips keep their own colour"),
        ("--occluder-weight", "30", "occluder_weight", "a hand over the mouth is left alone"),
        ("--mouth-detail-weight", "100", "mouth_detail_weight", "a mouth as sharp as its photo"),
    )
    for flag, value, name, why in mouth_priors:
        for direction in ("add", "remove"):
            assert main([*arguments, "--region", "mouth", flag, value, "--direction", direction]) == EXIT_OK
            assert f'"{name}": {float(value)}' in capsys.readouterr().out
        for region in ([], ["--region", "eyes"]):
            assert main([*arguments, *region, flag, value]) == EXIT_USAGE
            assert f"{flag} ({why}) is for mouth edits only" in capsys.readouterr().err
    upper_lip = ["--upper-lip-weight", "30"]  # only an opening mouth keeps its upper lip where it is
    assert main([*arguments, "--region", "mouth", *upper_lip, "--direction", "add"]) == EXIT_OK
    assert '"upper_lip_weight": 30.0' in capsys.readouterr().out
    for wrong in (["--region", "mouth", "--direction", "remove"], ["--region", "eyes", "--direction", "add"]):
        assert main([*arguments, *wrong, *upper_lip]) == EXIT_USAGE
        assert "--upper-lip-weight (an opened mouth keeps its upper lip) is for opening mouths only" in (
            capsys.readouterr().err
        )
    for box in ([], ["--region", "mouth", "--region-box-scale", "0"]):
        assert main([*arguments, *box[:2], "--region-box-scale", "1.6", *box[2:]]) == EXIT_USAGE
        assert "the region D's box of a local edit (--region), more than 0" in capsys.readouterr().err
    assert main([*arguments, "--region", "mouth", "--region-box-scale", "1.6"]) == EXIT_OK
    assert '"region_box_scale": 1.6' in capsys.readouterr().out
    # D comes from an edit run (its D and region D); a classify run's is another D
    assert main([*arguments, "--init-discriminator", str(runs["classify"])]) == EXIT_USAGE
    assert "is a 'classify' run; --init-discriminator takes an edit run" in capsys.readouterr().err


def test_synthetic_glasses_pairs_are_for_removing_eyeglasses_only(capsys, dataset_dir: Path) -> None:
    arguments = ["train", "--stage", "edit", "--data", str(dataset_dir), "--region", "eyes", "--dry-run"]
    for flag in ("--pair-weight", "--drawn-pair-weight"):
        name = flag[2:].replace("-", "_")
        assert main([*arguments, *GLASSES, flag, "10"]) == EXIT_OK
        assert f'"{name}": 10.0' in capsys.readouterr().out
        assert main([*arguments, "--attribute", "Eyeglasses", "--direction", "add", flag, "10"]) == EXIT_USAGE
        assert f"{flag} (synthetic glasses pairs) is for removing Eyeglasses only" in capsys.readouterr().err


def test_dry_run_checks_the_attribute_and_the_runs(capsys, tmp_path: Path, dataset_dir: Path, runs) -> None:
    base = ["train", "--stage", "edit", "--data", str(dataset_dir), "--direction", "remove", "--dry-run"]
    assert main([*base, "--attribute", "Eyeglass"]) == EXIT_USAGE
    assert "did you mean 'Eyeglasses'" in capsys.readouterr().err
    misspelt = runs["classify"].parent / (runs["classify"].name + "x")
    assert main([*base, "--attribute", "Eyeglasses", "--attribute-classifier", str(misspelt)]) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "no such run folder" in error and f"did you mean {runs['classify']}" in error
    wrong_stage = ["--attribute", "Eyeglasses", "--attribute-classifier", str(runs["reconstruct"])]
    assert main([*base, *wrong_stage]) == EXIT_USAGE
    assert "is a 'reconstruct' run; --attribute-classifier takes a classify run" in capsys.readouterr().err
    # every problem at once, and the run folder was never made
    both = [
        "--attribute",
        "Eyeglass",
        "--init-transform",
        str(tmp_path / "nope"),
        "--runs-dir",
        str(tmp_path),
    ]
    assert main([*base, *both]) == EXIT_USAGE
    assert "2 problem(s)" in capsys.readouterr().err
    assert main([*base, "--attribute", "Eyeglasses", "--attribute-classifier", str(runs["classify"])]) == 0


def test_diat_takes_the_width_of_the_run_it_starts_from(
    capsys, tmp_path: Path, dataset_dir: Path, runs: dict[str, Path]
) -> None:
    """A width-4 T without --transform-width 4: the run records width 4 and exports (it crashed)."""
    folder = tmp_path / "runs"
    arguments = [
        "--stage", "diat", "--data", str(dataset_dir), *GLASSES, "--steps", "1", "--variant", "diat",
        "--init-transform", str(runs["reconstruct"]), "--init-discriminator", str(runs["classify"]),
    ]  # fmt: skip
    assert main(["train", *arguments, "--dry-run"]) == EXIT_OK
    out, err = capsys.readouterr()
    config = json.loads(out)
    assert config["transform_width"] == 4 and config["discriminator_width"] == 4
    assert "transform_width = 4, taken from --init-transform" in err
    run = train(folder, *arguments)
    assert json.loads((run / "config.json").read_text())["transform_width"] == 4
    model = tmp_path / "models" / "diat-glasses"
    assert main(["export", str(run), "--out", str(model)]) == EXIT_OK
    assert ModelRegistry([model.parent]).get("diat-glasses").available
    # a width asked for that contradicts the run is refused, before any run folder
    assert main(["train", *arguments, "--transform-width", "8", "--runs-dir", str(tmp_path / "r2")]) == 2
    assert "--transform-width 8 does not match --init-transform" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()


def test_diat_without_its_pretrained_pieces_warns_loudly(capsys, dataset_dir: Path) -> None:
    arguments = ["train", "--stage", "diat", "--data", str(dataset_dir), *GLASSES, "--dry-run"]
    assert main(arguments) == EXIT_OK
    error = capsys.readouterr().err
    assert "WARNING: stage 'diat' without --init-transform: T starts from random weights" in error
    assert "WARNING: stage 'diat' without --denoiser" in error
    assert main([*arguments, "--perceptual-weight", "0"]) == EXIT_OK
    assert "without --denoiser" not in capsys.readouterr().err  # said on purpose: no warning


@pytest.mark.parametrize(
    ("flag", "field", "sigma"),
    [("--delta-lowpass", "delta_lowpass", "0.7"), ("--detail-gate", "detail_gate", "1.5")],
)
def test_the_editors_sigma_components_are_checked_up_front(
    capsys, dataset_dir: Path, flag: str, field: str, sigma: str
) -> None:
    arguments = [
        "train",
        "--stage",
        "edit",
        "--data",
        str(dataset_dir),
        *GLASSES,
        "--region",
        "eyes",
        "--dry-run",
    ]
    assert main([*arguments, flag, "-1"]) == EXIT_USAGE
    assert f"{flag} -1.0: a σ in pixels, 0 (none) or more" in capsys.readouterr().err
    assert main([*arguments, flag, sigma, "--editor", "plain"]) == EXIT_USAGE
    assert f"{flag} is a component of the residual editor" in capsys.readouterr().err
    assert main([*arguments, flag, sigma]) == EXIT_OK
    assert f'"{field}": {sigma}' in capsys.readouterr().out


def test_region_margin_is_checked_up_front(capsys, dataset_dir: Path) -> None:
    arguments = ["train", "--stage", "edit", "--data", str(dataset_dir), *GLASSES, "--dry-run"]
    assert main([*arguments, "--region-margin", "0.45"]) == EXIT_USAGE  # a global edit has no region
    assert "--region-margin is the margin around a local edit's region: it needs --region" in (
        capsys.readouterr().err
    )
    assert main([*arguments, "--region", "eyes", "--region-margin", "-0.1"]) == EXIT_USAGE
    assert "--region-margin -0.1: inter-ocular distances around the region, 0 to 1.5" in (
        capsys.readouterr().err
    )
    assert main([*arguments, "--region", "eyes", "--region-margin", "0.45"]) == EXIT_OK
    assert '"region_margin": 0.45' in capsys.readouterr().out


def test_resume_cannot_go_back_behind_the_checkpoint(capsys, tmp_path: Path, dataset_dir: Path) -> None:
    run = train(
        tmp_path / "runs", "--stage", "reconstruct", "--data", str(dataset_dir), "--steps", "4",
        "--transform-width", "4",
    )  # fmt: skip
    assert main(["train", "--resume", str(run), "--steps", "2", "-q"]) == EXIT_USAGE
    assert "already at step 4 (its checkpoint); --steps 2 would go back" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--transform-width", "8", "--steps", "6", "-q"]) == 2
    assert "--transform-width cannot change on --resume" in capsys.readouterr().err
    assert main(["train", "--resume", str(run), "--detail-gate", "1.5", "--steps", "6", "-q"]) == EXIT_USAGE
    assert "--detail-gate cannot change on --resume" in capsys.readouterr().err  # it adds weights
    assert main(["train", "--resume", str(run), "--detail-gate", "0", "--steps", "6", "--dry-run"]) == EXIT_OK
    assert load_checkpoint(run)["step"] == 4
    assert main(["train", "--resume", str(run), "--steps", "5", "-q"]) == EXIT_OK
    assert load_checkpoint(run)["step"] == 5


def test_a_failed_run_leaves_no_folder(monkeypatch, tmp_path: Path, dataset_dir: Path) -> None:
    """Before its first checkpoint a failed run is removed, so the next run gets the number it would
    have had; after one, the folder stays, marked failed, and resumes from its checkpoint."""
    runs = tmp_path / "runs"
    arguments = [
        "train", "--stage", "reconstruct", "--data", str(dataset_dir), "--transform-width", "4",
        "--runs-dir", str(runs), *TINY,
    ]  # fmt: skip
    stage = STAGES["reconstruct"]
    original = stage.step
    fail_at = [1]

    def broken(self, step: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
        if step >= fail_at[0]:
            raise RuntimeError("the stage broke")
        return original(self, step)

    monkeypatch.setattr(stage, "step", broken)
    with pytest.raises(RuntimeError, match="the stage broke"):
        main([*arguments, "--steps", "3"])
    assert not runs.exists() or not any(runs.iterdir())

    fail_at[0] = 3
    with pytest.raises(RuntimeError, match="the stage broke"):
        main([*arguments, "--steps", "4", "--checkpoint-every", "2"])
    (run,) = runs.iterdir()
    assert run.name.startswith("00001-")  # the first failure left no numbered folder behind
    status = json.loads((run / "status.json").read_text())
    assert status["status"] == "failed" and "the stage broke" in status["error"]
    assert load_checkpoint(run)["step"] == 2
    monkeypatch.setattr(stage, "step", original)
    assert main(["train", "--resume", str(run), "-q"]) == EXIT_OK
    assert [r["step"] for r in JsonlLog(run / "log.jsonl").read() if "losses" in r] == [1, 2, 3, 4]
    assert (run / CHECKPOINT).is_file()
