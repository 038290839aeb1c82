"""The training loop shared by every stage: seeding, device, resume, logging, samples, checkpoints, DDP.

`training_loop` takes a progress callback and an abort callback (the CLI maps Ctrl-C to the latter), so
the same loop serves the command line, tests and any future GUI. Multi-process training: start with
`torchrun --nproc_per_node N -m trainer.cli train ...`; the loop reads RANK / WORLD_SIZE, uses NCCL on
CUDA and gloo on the CPU, wraps the trained networks in DistributedDataParallel and lets rank 0 alone
write the run folder. Each rank draws its own batches, so the effective batch is N × batch_size.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist

from trainer.config import TrainConfig
from trainer.data import PreparedDataset
from trainer.run_lock import RunLock
from trainer.runs import (
    CHECKPOINT,
    LOG_FILE,
    JsonlLog,
    atomic_save,
    load_checkpoint,
    save_grid,
    settings_changed,
    write_status,
)
from trainer.stages import STAGES, Distributed

ProgressCallback = Callable[[int, int, dict[str, float]], None]
AbortCallback = Callable[[], bool]


def choose_device(name: str, rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda requested but torch sees no CUDA device")
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device(name)


def _distributed_from_env(device_name: str) -> Distributed:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    if not torch_dist.is_initialized():
        use_nccl = device_name != "cpu" and torch.cuda.is_available()
        torch_dist.init_process_group("nccl" if use_nccl else "gloo")
    return Distributed(torch_dist.get_rank(), torch_dist.get_world_size())


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _status_seconds(run_dir: Path, step: int) -> float:
    """Wall time recorded by the session that stopped at `step`, for checkpoints written before they
    carried their own; 0 when unknown."""
    try:
        status = json.loads((run_dir / "status.json").read_text())
    except (OSError, ValueError):
        return 0.0
    return float(status.get("seconds") or 0.0) if status.get("step") == step else 0.0


def training_loop(
    config: TrainConfig,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    should_abort: AbortCallback | None = None,
) -> dict[str, Any]:
    """Train `config.stage` in `run_dir` (which holds config.json); returns the final status.

    The run folder is locked for the whole session (trainer.run_lock): a second process cannot train in
    it at the same time (RunLockedError)."""
    run_dir = Path(run_dir)
    dist = _distributed_from_env(config.device)
    lock = RunLock(run_dir).acquire() if dist.main else None
    try:
        return _train(config, run_dir, dist, resume, progress, should_abort)
    finally:
        if lock is not None:
            lock.release()


def _train(
    config: TrainConfig,
    run_dir: Path,
    dist: Distributed,
    resume: bool,
    progress: ProgressCallback | None,
    should_abort: AbortCallback | None,
) -> dict[str, Any]:
    device = choose_device(config.device, dist.rank)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    _seed_everything(config.seed + dist.rank)
    dataset = PreparedDataset.open(config.data)
    if config.dev_fraction:
        dataset = dataset.with_dev_split(config.dev_fraction)
    if dataset.size != dataset.template.size:
        raise ValueError("dataset crops and template disagree on the crop size")
    stage = STAGES[config.stage](config, dataset, device, dist)
    log = JsonlLog(run_dir / LOG_FILE)
    start = 0
    earlier_seconds = 0.0  # training time of the sessions before this one (wall time is cumulative)
    if resume and (run_dir / CHECKPOINT).is_file():
        state = load_checkpoint(run_dir)
        stage.load_state_dict(state)
        start = int(state["step"])
        earlier_seconds = float(state.get("seconds") or _status_seconds(run_dir, start))
        rng = state.get("torch_rng")
        if rng is not None:
            torch.set_rng_state(rng)
        if dist.main:
            log.truncate_after(start)
            record: dict[str, Any] = {"step": start, "event": "resumed"}
            changed = settings_changed(state.get("config") or {}, config.to_dict(), TrainConfig.defaults())
            if changed:  # config.json keeps only the new values: the log keeps when they began
                record["changed"] = changed
            log.write(record)
    elif dist.main:
        log.write({"step": 0, "event": "started", "world_size": dist.world, "device": str(device)})

    def checkpoint(step: int) -> None:
        if dist.main:
            state = stage.state_dict()
            state.update(
                step=step,
                torch_rng=torch.get_rng_state(),
                config=config.to_dict(),
                seconds=earlier_seconds + time.perf_counter() - started,
            )
            atomic_save(state, run_dir / CHECKPOINT)

    def samples(step: int) -> None:
        if not dist.main:
            return
        stage.train_mode(False)
        columns = stage.sample_columns()
        metrics = stage.heldout_metrics()
        stage.train_mode(True)
        if columns:
            save_grid(columns, run_dir / "samples" / f"step-{step:07d}.png")
        if metrics:
            log.write({"step": step, "heldout": metrics})

    started = time.perf_counter()
    last_time = started
    step = start
    status = "done"
    stage.train_mode(True)
    for step in range(start + 1, config.steps + 1):
        losses = stage.step(step)
        if step % config.log_every == 0 or step == config.steps:
            now = time.perf_counter()
            steps_done = min(config.log_every, step - start)
            seconds = (now - last_time) / max(steps_done, 1)
            last_time = now
            session_rate = (step - start) / max(now - started, 1e-9)  # steps/s of this session so far
            if dist.main:
                log.write(
                    {
                        "step": step,
                        "losses": {k: round(v, 6) for k, v in losses.items()},
                        "seconds_per_step": round(seconds, 4),
                        "images_per_second": round(config.batch_size * dist.world / max(seconds, 1e-9), 2),
                        "eta_seconds": round((config.steps - step) / session_rate, 1),
                    }
                )
        if step % config.sample_every == 0:
            samples(step)
        if step % config.checkpoint_every == 0:
            checkpoint(step)
        if progress is not None and dist.main:
            progress(step, config.steps, losses)
        if should_abort is not None and should_abort():
            status = "aborted"
            break
    checkpoint(step)
    if status == "done" and step % config.sample_every != 0:
        samples(step)
    result = {
        "status": status,
        "step": step,
        "steps": config.steps,
        "seconds": round(earlier_seconds + time.perf_counter() - started, 2),
        "session_seconds": round(time.perf_counter() - started, 2),
        "device": str(device),
        "world_size": dist.world,
    }
    if dist.main:
        write_status(run_dir, **result)
        log.write({"step": step, "event": status})
    if dist.world > 1:
        torch_dist.barrier()
        torch_dist.destroy_process_group()
    return result
