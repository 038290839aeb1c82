"""Resume after a kill, bit-exact resume, and the multi-process (DDP, gloo) path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from trainer.cli import EXIT_OK, main
from trainer.runs import CHECKPOINT, JsonlLog, load_checkpoint, network_state

REPO = Path(__file__).resolve().parents[2]
TINY = ["--transform-width", "4", "--batch-size", "4", "--log-every", "1", "--sample-every", "1000", "-q"]


def only_run(runs: Path) -> Path:
    (run,) = list(runs.iterdir())
    return run


def test_resume_is_exact(tmp_path: Path, dataset_dir: Path) -> None:
    """3 steps + resume for 3 more gives bit-identical weights to 6 steps in one go."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = ["train", "--stage", "reconstruct", "--data", str(dataset_dir), *TINY, "--checkpoint-every", "3"]
    assert main([*common, "--runs-dir", str(straight), "--steps", "6"]) == EXIT_OK
    assert main([*common, "--runs-dir", str(split), "--steps", "3"]) == EXIT_OK
    run = only_run(split)
    assert main(["train", "--resume", str(run), "--steps", "6", "-q"]) == EXIT_OK
    a = network_state(only_run(straight), "transform")
    b = network_state(run, "transform")
    assert all(torch.equal(a[key], b[key]) for key in a)
    steps = [r["step"] for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert json.loads((run / "config.json").read_text())["steps"] == 6
    # wall time adds up over the sessions: the first session's time is part of the total
    first = json.loads((only_run(straight) / "status.json").read_text())  # a 6-step session, for scale
    status = json.loads((run / "status.json").read_text())
    assert status["seconds"] > status["session_seconds"] > 0
    assert load_checkpoint(run)["seconds"] == pytest.approx(status["seconds"], abs=0.5)
    assert first["seconds"] == first["session_seconds"]


def test_a_resume_trains_at_the_learning_rate_it_is_given(tmp_path: Path, dataset_dir: Path) -> None:
    """`--resume RUN --lr X` trains at X: Adam's saved state carries the rate it was saved with, which had
    kept an editor held at `--lr 0` (D's warm-up after `--init-transform MODEL`) frozen after the resume."""
    common = ["train", "--stage", "reconstruct", "--data", str(dataset_dir), *TINY, "--checkpoint-every", "2"]
    assert main([*common, "--runs-dir", str(tmp_path), "--steps", "2", "--lr", "0"]) == EXIT_OK
    run = only_run(tmp_path)
    held = network_state(run, "transform")
    assert main(["train", "--resume", str(run), "--steps", "4", "--lr", "0.001", "-q"]) == EXIT_OK
    trained = network_state(run, "transform")
    assert any(not torch.equal(held[key], trained[key]) for key in held)
    adam = load_checkpoint(run)["optimizers"]["transform"]
    assert [group["lr"] for group in adam["param_groups"]] == [0.001]
    assert len(adam["state"]) > 0  # the moments went on from the checkpoint's


def test_edit_stage_resumes_exactly(tmp_path: Path, dataset_dir: Path) -> None:
    """The recipe's extra state (EMA, augmentation and glasses generators, lazy R1 counter) resumes
    bit-exactly: 2 + 2 steps equal 4 in one go."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    common = [
        "train", "--stage", "edit", "--data", str(dataset_dir), "--attribute", "Eyeglasses",
        "--direction", "remove", "--region", "eyes", "--pair-weight", "1", "--r1-every", "2",
        "--augment", "colour,translation,cutout",
        "--discriminator-width", "4", *TINY, "--checkpoint-every", "2",
    ]  # fmt: skip
    assert main([*common, "--runs-dir", str(straight), "--steps", "4"]) == EXIT_OK
    assert main([*common, "--runs-dir", str(split), "--steps", "2"]) == EXIT_OK
    run = only_run(split)
    assert main(["train", "--resume", str(run), "--steps", "4", "-q"]) == EXIT_OK
    for name in ("editor", "editor_ema", "discriminator", "region_discriminator"):
        a = network_state(only_run(straight), name)
        b = network_state(run, name)
        assert all(torch.equal(a[key], b[key]) for key in a), name


def test_resume_after_kill(tmp_path: Path, dataset_dir: Path) -> None:
    runs = tmp_path / "runs"
    command = [
        sys.executable,
        "-m",
        "trainer.cli",
        "train",
        "--stage",
        "enhance-global",
        "--data",
        str(dataset_dir),
        "--enhancer-width",
        "4",
        "--batch-size",
        "2",
        "--steps",
        "100000",
        "--checkpoint-every",
        "2",
        "--log-every",
        "1",
        "--sample-every",
        "100000",
        "--runs-dir",
        str(runs),
        "-q",
    ]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            ready = runs.exists() and any(runs.iterdir()) and (only_run(runs) / CHECKPOINT).is_file()
            if ready and load_checkpoint(only_run(runs))["step"] >= 4:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint within 2 minutes")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    run = only_run(runs)
    killed_at = load_checkpoint(run)["step"]
    assert not (run / "status.json").exists()  # it really died mid-run
    target = killed_at + 3
    assert main(["train", "--resume", str(run), "--steps", str(target), "-q"]) == EXIT_OK
    assert load_checkpoint(run)["step"] == target
    steps = [r["step"] for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]
    assert steps == sorted(set(steps)) and steps[-1] == target  # no duplicated steps after the resume point
    assert json.loads((run / "status.json").read_text())["status"] == "done"


def test_abort_callback_checkpoints(tmp_path: Path, dataset_dir: Path) -> None:
    from trainer.config import TrainConfig
    from trainer.training_loop import training_loop

    run = tmp_path / "run"
    run.mkdir()
    config = TrainConfig(
        stage="reconstruct",
        data=str(dataset_dir),
        steps=50,
        batch_size=2,
        transform_width=4,
        checkpoint_every=1000,
        sample_every=1000,
    )
    (run / "config.json").write_text(config.to_json())
    seen: list[int] = []
    result = training_loop(
        config,
        run,
        progress=lambda step, total, losses: seen.append(step),
        should_abort=lambda: len(seen) >= 2,
    )
    assert result["status"] == "aborted" and result["step"] == 2
    assert load_checkpoint(run)["step"] == 2


def test_distributed_gloo_two_processes(tmp_path: Path, dataset_dir: Path) -> None:
    runs = tmp_path / "runs"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "trainer.cli",
        "train",
        "--stage",
        "diat",
        "--variant",
        "diat-a",
        "--data",
        str(dataset_dir),
        "--attribute",
        "Eyeglasses",
        "--direction",
        "remove",
        "--steps",
        "3",
        "--device",
        "cpu",
        "--runs-dir",
        str(runs),
        *TINY,
        "--discriminator-width",
        "4",
    ]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        _, stderr = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # torchrun and both workers
        process.communicate()
        pytest.fail("torchrun did not finish within 5 minutes")
    assert process.returncode == 0, stderr[-3000:]
    run = only_run(runs)  # one run folder for both ranks
    status = json.loads((run / "status.json").read_text())
    assert status["world_size"] == 2 and status["status"] == "done"
    started = JsonlLog(run / "log.jsonl").read()[0]
    assert started["world_size"] == 2
    assert len([r for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]) == 3  # rank 0 alone logs


def test_dry_run_prints_the_resolved_config(capsys, dataset_dir: Path, tmp_path: Path) -> None:
    assert (
        main(
            [
                "train",
                "--stage",
                "diat",
                "--data",
                str(dataset_dir),
                "--variant",
                "diat",
                "--attribute",
                "Eyeglasses",
                "--identity-weight",
                "3",
                "--blur-sigma",
                "1",
                "2",
                "--no-amp",
                "--dry-run",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == EXIT_OK
    )
    config = json.loads(capsys.readouterr().out)
    assert config["identity_weight"] == 3.0 and config["variant"] == "diat" and config["amp"] is False
    assert config["blur_sigma"] == [1.0, 2.0] and config["lr"] == 1e-4
    assert not (tmp_path / "runs").exists()


def test_bad_usage(capsys, dataset_dir: Path) -> None:
    assert main(["train", "--stage", "diat", "--data", str(dataset_dir), "--variant", "gan"]) == 2
    assert "variant must be one of" in capsys.readouterr().err
    assert main(["train", "--stage", "classify", "--data", str(dataset_dir), "--attribute", "Smiling"]) == 2
    assert "attribute 'Smiling' is not in" in capsys.readouterr().err
    assert main(["train", "--stage", "reconstruct"]) == 2
