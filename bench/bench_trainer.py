"""Trainer throughput on this machine: training images/second per stage, and T's inference time in
ONNX Runtime vs torch.

    .venv/bin/python bench/bench_trainer.py --data DATASET [--widths 16 32] [--batch 16] [--steps 4]

DATASET is any folder made by `diat-studio-train prepare` at 128 px (e.g. 200 CelebA faces:
`diat-studio-train prepare ../shared/data/celeba10k /tmp/bench-data --layout celeba --limit 200`).
Prints Markdown tables (median seconds per step after one warm-up step).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diat_studio.core.inference import Device, create_session
from trainer.config import TrainConfig
from trainer.data import PreparedDataset
from trainer.export import export_onnx
from trainer.networks import build_network, count_parameters
from trainer.stages import STAGES, Distributed
from trainer.training_loop import training_loop

ATTRIBUTE = "Mouth_Slightly_Open"


def seconds_per_step(config: TrainConfig, dataset: PreparedDataset, steps: int) -> float:
    stage = STAGES[config.stage](config, dataset, torch.device("cpu"), Distributed())
    stage.train_mode(True)
    stage.step(0)  # warm-up
    times = []
    for step in range(1, steps + 1):
        started = time.perf_counter()
        stage.step(step)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def prior_run(root: Path, config: TrainConfig) -> str:
    run = root / config.stage / str(config.transform_width)
    run.mkdir(parents=True)
    (run / "config.json").write_text(config.to_json())
    training_loop(config, run)
    return str(run)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", required=True)
    parser.add_argument("--widths", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4)
    options = parser.parse_args()
    dataset = PreparedDataset.open(options.data)
    size = dataset.size
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, crops {size} px, "
        f"batch {options.batch}\n"
    )
    print("| stage | width | s/step | images/s |")
    print("|---|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for width in options.widths:
            base = dict(
                data=options.data,
                batch_size=options.batch,
                transform_width=width,
                discriminator_width=width,
                denoiser_width=width,
                enhancer_width=width,
                classifier_width=width,
                steps=1,
                sample_every=10**6,
                checkpoint_every=10**6,
                attribute=ATTRIBUTE,
                region="mouth",
            )
            g_run = prior_run(root, TrainConfig(stage="perceptual", **base))
            f_run = prior_run(root, TrainConfig(stage="denoise", reconstruction=g_run, **base))
            t_run = prior_run(root, TrainConfig(stage="diat", **base))
            c_run = prior_run(root, TrainConfig(stage="classify", **base))
            recipe = {"attribute_classifier": c_run, "gan_loss": "hinge"}
            stages = [
                ("reconstruct", {}),
                ("perceptual", {}),
                ("denoise", {"reconstruction": g_run}),
                ("classify", {}),
                ("diat", {"variant": "diat", "denoiser": f_run}),
                ("diat", {"variant": "diat-a", "denoiser": f_run}),
                ("enhance-local", {"transform_run": t_run}),
                ("enhance-global", {}),
                ("evaluator", {}),
                ("edit", {**recipe, "region": None, "label": "edit, global, bf16"}),
                ("edit", {**recipe, "region": None, "amp": False, "label": "edit, global, fp32"}),
                ("edit", {**recipe, "label": "edit, local + region D, bf16"}),
            ]
            for stage, extra in stages:
                label = extra.pop("label", None) or (
                    f"{stage} ({extra['variant']})" if "variant" in extra else stage
                )
                config = TrainConfig(stage=stage, **{**base, **extra})
                seconds = seconds_per_step(config, dataset, options.steps)
                print(f"| {label} | {width} | {seconds:.2f} | {options.batch / seconds:.1f} |", flush=True)

        print("\n| T width | parameters | ONNX size | batch | torch ms | ONNX Runtime ms |")
        print("|---:|---:|---:|---:|---:|---:|")
        for width in options.widths:
            transform = build_network("transform", width=width).eval()
            path = root / f"t{width}.onnx"
            export_onnx(transform, {"image": torch.zeros(1, 3, size, size)}, "edited", path)
            session, _ = create_session(path, Device.CPU)
            for batch in (1, 8):
                x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
                with torch.no_grad():
                    torch_ms = _median_ms(lambda x=x, t=transform: t(torch.from_numpy(x)))
                ort_ms = _median_ms(lambda x=x, s=session: s.run(["edited"], {"image": x}))
                print(
                    f"| {width} | {count_parameters(transform):,} | {path.stat().st_size / 1e6:.1f} MB "
                    f"| {batch} "
                    f"| {torch_ms:.1f} | {ort_ms:.1f} |",
                    flush=True,
                )


def _median_ms(function: object, repeat: int = 7) -> float:
    function()  # type: ignore[operator]
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


if __name__ == "__main__":
    main()
