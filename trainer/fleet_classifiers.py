"""The fleet's first minutes when its pack carries no classifiers (`pack --classifiers-on-device`).

One guide (the frozen attribute classifier of the edit recipe) and one evaluator (the judge of `evaluate`)
per attribute, all trained at once on the lent machine: eight width-16 classifiers take a minute or two
on a GPU, against two hours on the 2-core development CPU. Each is slimmed into
`work/classifiers/<kind>-<Attribute>` (what `load_trained` and `evaluate` read) and all of them travel
back in `OUT/classifiers.tar.gz`, for `fleet-import` to unpack and `trainer.classifier_store.install` to
carry in the repository.

The recipe is the CPU's (scripts/train_bundled.sh classifiers: width 16, batch 32, the guide at the
trainer's learning rate for 1,500 steps, the evaluator at 3e-4 for 600), see `ClassifierPlan`. The
repository's own judges are carried (trainer.classifier_store), so this is for a pack of attributes it
does not carry, or to try another recipe.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CLASSIFIERS_FILE = "classifiers.tar.gz"


@dataclass(frozen=True)
class ClassifierPlan:
    """The CPU's recipe (scripts/train_bundled.sh classifiers) by default. The first on-device classifiers
    (2026-11-30: 4,000 evaluator steps at batch 64) were stronger on real faces and badly fooled by blur:
    their Eyeglasses and Mouth_Slightly_Open evaluators called 81% / 83% of the blur control's faces edited
    (the CPU recipe's, on two machines: 12-14% / 17-37%), a judge a smear passes (docs/ABLATION.md, "A
    fourth GPU session")."""

    guide_steps: int = 1500
    evaluator_steps: int = 600
    batch_size: int = 32
    width: int = 16
    """The guides' D width and the evaluators' width: the CPU's, so that the edit stage and `evaluate` cost
    here what they cost with the CPU-trained ones."""
    augment: str = ""
    """trainer.augment policies for both classes, e.g. "blur" (a soft photo keeps its attribute; stricter
    on slight changes: docs/ABLATION.md)."""
    minutes: float = 4.0
    """A deadline: a classifier still training then stops, keeps its last checkpoint and says so."""


def classifier_config(
    kind: str, attribute: str, dataset: Path, runs_dir: Path, plan: ClassifierPlan, device: str, threads: int
) -> Any:
    from trainer.config import TrainConfig

    steps = plan.guide_steps if kind == "guide" else plan.evaluator_steps
    every = max(steps // 5, 1)
    common = dict(
        data=str(dataset),
        attribute=attribute,
        steps=steps,
        batch_size=plan.batch_size,
        runs_dir=str(runs_dir),
        device=device,
        threads=threads,
        sample_every=every,
        checkpoint_every=every,
        augment=plan.augment,
    )
    if kind == "guide":
        return TrainConfig(
            stage="classify",
            direction="add",
            name=f"guide-{attribute}",
            discriminator_width=plan.width,
            **common,
        )
    return TrainConfig(
        stage="evaluator", lr=3e-4, name=f"{attribute}-classifier", classifier_width=plan.width, **common
    )


def train_classifiers(
    attributes: list[str],
    dataset: Path,
    work: Path,
    out: Path,
    plan: ClassifierPlan,
    device: str = "auto",
    threads: int = 1,
    say: Callable[[str], None] = print,
) -> dict[str, dict[str, Path]]:
    """Train, slim and pack every attribute's guide and evaluator; {kind: {attribute: slim run}}."""
    from trainer.classifier_store import KINDS, heldout_accuracy
    from trainer.fleet import _error, _train_edit  # the edits' training process serves the classifiers too
    from trainer.pack import slim_run
    from trainer.runs import CONFIG_FILE, new_run_folder

    runs_dir = work / "classifier-runs"
    runs: dict[tuple[str, str], Path] = {}
    for attribute in attributes:
        for kind in ("guide", "evaluator"):
            config = classifier_config(kind, attribute, dataset, runs_dir, plan, device, threads)
            run = new_run_folder(runs_dir, config.stage, config.name)
            (run / CONFIG_FILE).write_text(config.to_json())
            runs[(kind, attribute)] = run
    deadline = time.time() + 60 * plan.minutes
    context = mp.get_context("spawn")
    never = context.Event()  # the deadline alone stops them
    processes = {
        key: context.Process(
            target=_train_edit, args=(str(run), deadline, never, threads), name=f"{key[0]}-{key[1]}"
        )
        for key, run in runs.items()
    }
    say(f"fleet: training {len(processes)} classifiers first ({plan.minutes:g} min at most)…")
    started = time.time()
    for process in processes.values():
        process.start()
    for process in processes.values():
        process.join()
    failed = [f"{k[0]} {k[1]}" for k, p in processes.items() if p.exitcode != 0]
    if failed:
        errors = "; ".join(_error(runs[k])[-400:] for k, p in processes.items() if p.exitcode != 0)
        raise RuntimeError(f"the classifiers {', '.join(failed)} failed: {errors}")
    slim_dir = work / "classifiers"
    found: dict[str, dict[str, Path]] = {"guide": {}, "evaluator": {}}
    for (kind, attribute), run in runs.items():
        slim = slim_dir / f"{kind}-{attribute}"
        slim_run(run, slim, KINDS[kind][1])
        found[kind][attribute] = slim
        accuracy = heldout_accuracy(slim)
        shown = "—" if accuracy is None else f"{100 * accuracy:.1f}%"
        say(f"fleet: {kind} {attribute}: held-out balanced accuracy {shown}")
    out.mkdir(parents=True, exist_ok=True)
    temp = out / f".{CLASSIFIERS_FILE}.part"
    with tarfile.open(temp, "w:gz") as archive:
        archive.add(slim_dir, "classifiers")
    os.replace(temp, out / CLASSIFIERS_FILE)
    say(f"fleet: classifiers trained in {time.time() - started:.0f} s")
    return found
