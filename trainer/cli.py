"""`diat-studio-train`: prepare data, train DIAT / DIAT-A stages, export to ONNX, evaluate.

    diat-studio-train prepare SOURCE OUT --layout celeba|utkface|custom
    diat-studio-train train --stage STAGE --data DATA [options]     (--dry-run, --resume RUN)
    diat-studio-train classifier --data DATA --attribute NAME     (the independent evaluator)
    diat-studio-train export RUN --out DIR [--enhancer RUN] [--install]
    diat-studio-train evaluate MODEL_DIR --data DATA --classifier RUN [--split dev] [work sizes]
    diat-studio-train custom WITH_DIR WITHOUT_DIR --name NAME [--region R] [--preset P] [--install]
    diat-studio-train pack DATA OUT                     (a lent GPU: what travels, ≤ 64 MiB)
    diat-studio-train fleet PACK --minutes M --out DIR  (every edit at once on one GPU)
    diat-studio-train fleet-import RESULTS --data DATA [--ship]

Every `train` builds a typed TrainConfig, checks it (trainer/checks.py: dataset, attribute, earlier runs,
widths, resume) before anything is made, writes it as JSON into a new numbered run folder
(runs/00001-<stage>-<name>) and runs the training loop; Ctrl-C or SIGTERM checkpoints and stops,
`--resume RUN` continues from the last checkpoint. A run that fails before its first checkpoint leaves
no folder behind. Exit codes: 0 done, 1 failed, 2 bad usage (nothing started), 130 interrupted (Ctrl-C),
143 stopped by SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import types
import typing
from collections.abc import Sequence
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_NOT_OPTIONS = {"stage", "data", "extra"}


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        options = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    if not hasattr(options, "handler"):
        parser.print_help()
        return EXIT_USAGE
    from diat_studio.core.errors import DiatError

    try:
        return int(options.handler(options))
    except (DiatError, ValueError, FileNotFoundError) as exc:
        print(f"diat-studio-train: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    from trainer.config import TrainConfig

    parser = argparse.ArgumentParser(
        prog="diat-studio-train", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    prepare = commands.add_parser("prepare", help="align a source of photos into a training dataset")
    prepare.add_argument(
        "source", type=Path, help="CelebA / UTKFace folder, or a folder with with/ and without/"
    )
    prepare.add_argument("out", type=Path, help="the dataset folder to write")
    prepare.add_argument("--layout", choices=("celeba", "utkface", "custom"), required=True)
    prepare.add_argument("--size", type=int, default=128, help="crop size in pixels (default 128)")
    prepare.add_argument("--heldout", type=float, default=0.1, help="held-out fraction (default 0.1)")
    prepare.add_argument("--seed", type=int, default=0, help="seed of the train/held-out split")
    prepare.add_argument("--limit", type=int, help="only the first N photos")
    prepare.add_argument("--attribute", default="Attribute", help="custom layout: the attribute's name")
    prepare.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    prepare.add_argument("--force", action="store_true", help="replace an existing prepared dataset")
    prepare.set_defaults(handler=_run_prepare)

    downscale = commands.add_parser(
        "downscale", help="a prepared dataset at a smaller crop size (a coarse stage, cheap ablations)"
    )
    downscale.add_argument("data", type=Path, help="a prepared dataset folder")
    downscale.add_argument("out", type=Path, help="the new dataset folder (must not exist)")
    downscale.add_argument("--size", type=int, required=True, help="crop size in pixels, e.g. 64")
    downscale.set_defaults(handler=_run_downscale)

    train = commands.add_parser("train", help="train one stage (see trainer/stages.py for the schedule)")
    from trainer.stages import STAGES

    train.add_argument("--stage", choices=sorted(STAGES), help="required unless --resume")
    train.add_argument("--data", help="a prepared dataset folder (required unless --resume)")
    _add_config_options(train, TrainConfig)
    train.add_argument(
        "--resume", type=Path, metavar="RUN", help="continue this run from its last checkpoint"
    )
    train.add_argument(
        "--dry-run", action="store_true", help="run every check, print the resolved config and exit"
    )
    train.add_argument("-q", "--quiet", action="store_true")
    train.set_defaults(handler=_run_train)

    classifier = commands.add_parser("classifier", help="train the independent evaluator classifier")
    classifier.add_argument("--data", required=True)
    classifier.add_argument("--attribute", required=True)
    classifier.add_argument("--steps", type=int, default=1500)
    classifier.add_argument("--batch-size", type=int, default=32)
    classifier.add_argument("--classifier-width", type=int, default=32)
    classifier.add_argument("--runs-dir", default="runs")
    classifier.add_argument("--device", default="auto")
    classifier.add_argument(
        "--augment",
        default="",
        help="augmentations of both classes, e.g. blur (a soft photo keeps its attribute)",
    )
    classifier.add_argument("--dry-run", action="store_true")
    classifier.add_argument("-q", "--quiet", action="store_true")
    classifier.set_defaults(handler=_run_classifier)

    export = commands.add_parser("export", help="export a trained transform (+ enhancer) for the app")
    export.add_argument("run", type=Path, metavar="RUN", help="a finished 'diat' or 'edit' run")
    export.add_argument(
        "--out", type=Path, help="the model folder to write (written beside it, then swapped in)"
    )
    export.add_argument(
        "--install",
        action="store_true",
        help="install the model into the per-user models folder, where the app and `diat-studio batch` "
        "find it (with --out: a copy of that folder)",
    )
    export.add_argument("--force", action="store_true", help="--install: replace an installed model")
    export.add_argument("--enhancer", type=Path, metavar="RUN", help="an enhance-local / enhance-global run")
    export.add_argument("--name", help="model name (default: the folder name)")
    export.add_argument("--display-name")
    export.add_argument(
        "--experimental",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="mark the model experimental (hidden in the app unless asked for); default: keep what the "
        "model folder's manifest says, else not experimental",
    )
    export.add_argument(
        "--passes",
        type=_transform_passes,
        metavar="N",
        help="how many times the app runs the transform on its own output, each pass composited through "
        "the mask (the manifest's transform_passes); default: keep what the model folder's manifest says, "
        "else 1",
    )
    export.add_argument(
        "--mirror-average",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the app edits each face as it is and mirrored and averages the two (the manifest's "
        "mirror_average); default: keep what the model folder's manifest says, else not",
    )
    export.set_defaults(handler=_run_export)

    evaluate = commands.add_parser("evaluate", help="measure an exported model on held-out faces")
    evaluate.add_argument("model", type=Path, metavar="MODEL_DIR")
    evaluate.add_argument(
        "--data", type=Path, required=True, help="the prepared dataset (its held-out split)"
    )
    evaluate.add_argument(
        "--classifier",
        type=Path,
        metavar="RUN",
        help="an 'evaluator' run (default: the newest of the model's attribute in --runs-dir, else the one "
        "the repository carries in trainer/classifiers)",
    )
    evaluate.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where to look for evaluators")
    evaluate.add_argument(
        "--limit", type=int, default=500, help="at most this many faces to edit (and real target faces)"
    )
    evaluate.add_argument(
        "--split",
        choices=("heldout", "dev"),
        default="heldout",
        help="held-out faces (final numbers, written to the manifest) or the developers' split that the "
        "transform run set aside with --dev-fraction (sweeps; evaluation-dev.json only)",
    )
    evaluate.add_argument(
        "--no-manifest", action="store_true", help="do not write the metrics into the manifest"
    )
    evaluate.add_argument(
        "--quality-bar",
        action="store_true",
        help="held-out split: mark the model experimental in its manifest if it misses any target of "
        "trainer.quality.QUALITY_BAR (and not experimental if it meets them all)",
    )
    sizes = evaluate.add_argument_group(
        "work sizes (defaults from trainer.evaluate.EvaluationSizes: the numbers in the model cards)"
    )
    sizes.add_argument(
        "--two-sample-steps",
        type=int,
        help=(
            "training steps of each realism two-sample classifier (three are trained, the best counts; "
            "0 leaves the test out; default 600)"
        ),
    )
    sizes.add_argument("--grey-faces", type=int, help="faces made grey for the grey check (default 16)")
    sizes.add_argument(
        "--already-target",
        type=int,
        help="faces that already have the target value, edited anyway (default 100)",
    )
    sizes.add_argument("--grid-faces", type=int, help="faces drawn at random for the two grids (default 16)")
    sizes.add_argument(
        "--occluded-faces",
        type=int,
        help="mouth edits: faces edited with a hand or an object drawn over the mouth (default 200; 0 = off)",
    )
    sizes.add_argument("--seed", type=int, help="seed of every random draw (default 0)")
    evaluate.set_defaults(handler=_run_evaluate)

    from trainer.custom_cli import add_custom_command
    from trainer.fleet_cli import add_commands

    add_custom_command(commands)
    add_commands(commands)
    return parser


def _add_config_options(parser: argparse.ArgumentParser, config_type: type) -> None:
    """One --option per TrainConfig field, typed from the dataclass (defaults stay in the dataclass)."""
    hints = typing.get_type_hints(config_type)
    group = parser.add_argument_group("training configuration (defaults from trainer.config.TrainConfig)")
    for field in fields(config_type):
        if field.name in _NOT_OPTIONS:
            continue
        flag = "--" + field.name.replace("_", "-")
        hint = hints[field.name]
        default = field.default if field.default is not MISSING else None
        help_text = f"default: {default}"
        base = _base_type(hint)
        if base is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif base is tuple:
            group.add_argument(
                flag, type=float, nargs=2, default=None, metavar=("LOW", "HIGH"), help=help_text
            )
        else:
            group.add_argument(flag, type=base, default=None, help=help_text)


def _base_type(hint: Any) -> type:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    origin = typing.get_origin(hint)
    return origin if origin is not None else hint


def _config_overrides(options: argparse.Namespace) -> dict[str, Any]:
    from trainer.config import TrainConfig

    names = {f.name for f in fields(TrainConfig)} - _NOT_OPTIONS
    return {name: getattr(options, name) for name in names if getattr(options, name, None) is not None}


def _run_prepare(options: argparse.Namespace) -> int:
    from trainer.prepare import PrepareConfig, PrepareInterrupted, prepare_dataset
    from trainer.progress import ProgressLine
    from trainer.stopping import StopRequests

    config = PrepareConfig(
        str(options.source),
        str(options.out),
        options.layout,
        options.size,
        options.heldout,
        options.seed,
        options.limit,
        options.attribute,
        options.workers,
    )
    line = ProgressLine(sys.stderr, "photos", label="aligning")
    first: list[int] = []

    def progress(done: int, total: int) -> None:
        if not first:
            first.append(done - 1)
            if done > 1:
                print(f"resuming: {done} of {total} photos were aligned before", file=sys.stderr)
        every = 50 if line.tty else max(total // 20, 50)  # a log file gets about 20 lines
        if done % every == 0 or done == total:
            line.update(done, total, start=first[0])

    with StopRequests("stopping: the aligned photos are kept…") as stop:
        try:
            summary = prepare_dataset(config, progress, stop, force=options.force)
        except PrepareInterrupted as exc:
            line.finish()
            print(
                f"diat-studio-train: interrupted after {exc.done} of {exc.total} photos; run the same "
                "command again to continue",
                file=sys.stderr,
            )
            return stop.exit_code
        finally:
            line.finish()
    print(
        f"{summary['aligned']} of {summary['photos']} photos aligned into {options.out} "
        f"({summary['split']['train']} train, {summary['split']['heldout']} held out)"
    )  # type: ignore[index]
    if summary["not_aligned"]:
        print(f"{summary['not_aligned']} photos had no usable face (listed in {options.out}/prepare.json):")
        for failure in summary["failures"][:20]:  # type: ignore[index]
            print(f"  {failure['file']}: {failure['reason']}")
    return EXIT_OK


def _run_downscale(options: argparse.Namespace) -> int:
    from trainer.downscale import downscale_dataset

    info = downscale_dataset(options.data, options.out, options.size)
    print(f"{info['aligned']} crops at {options.size} px in {options.out}")
    return EXIT_OK


def _run_train(options: argparse.Namespace) -> int:
    from trainer.config import TrainConfig
    from trainer.runs import run_config

    overrides = _config_overrides(options)
    if options.resume:
        data = run_config(options.resume)
        data.update(overrides)
        config = TrainConfig.from_dict(data)
    else:
        if not options.stage or not options.data:
            print(
                "diat-studio-train: error: train needs --stage and --data (or --resume RUN)", file=sys.stderr
            )
            return EXIT_USAGE
        config = TrainConfig(stage=options.stage, data=options.data, **overrides)
    config = _checked(config, set(overrides), options.resume)
    if options.dry_run:
        print(config.to_json(), end="")
        return EXIT_OK
    return _train(config, options.resume, options.quiet)


def _checked(config: Any, explicit: set[str], resume: Path | None = None) -> Any:
    """The config after the up-front checks (trainer.checks); warnings and notes go to stderr."""
    from trainer.checks import check_config

    checked = check_config(config, explicit=explicit, resume=resume)
    for note in checked.notes:
        print(f"diat-studio-train: {note}", file=sys.stderr)
    for warning in checked.warnings:
        print(f"diat-studio-train: WARNING: {warning}", file=sys.stderr)
    return checked.config


def _train(config: Any, resume: Path | None, quiet: bool) -> int:
    return _train_run(config, resume, quiet)[0]


def _train_run(config: Any, resume: Path | None, quiet: bool) -> tuple[int, Path]:
    """Train in a new run folder (or `resume`'s); (exit code, the run folder)."""
    from trainer.progress import ProgressLine
    from trainer.runs import CONFIG_FILE
    from trainer.stopping import StopRequests
    from trainer.training_loop import training_loop

    rank = int(os.environ.get("RANK", "0"))
    run_dir = Path(resume) if resume else _shared_run_folder(config, rank)
    if rank == 0:
        (run_dir / CONFIG_FILE).write_text(config.to_json())
        print(f"run folder: {run_dir}", file=sys.stderr)
    line = ProgressLine(sys.stderr if not quiet and rank == 0 else None, "steps")
    start_step: list[int] = []

    def progress(step: int, total: int, losses: dict[str, float]) -> None:
        if not start_step:
            start_step.append(step - 1)
        if line.tty or step % config.log_every == 0 or step == total:
            text = " ".join(f"{k}={v:.4g}" for k, v in list(losses.items())[:4])
            line.update(step, total, text, start=start_step[0])

    with StopRequests("stopping after this step and saving a checkpoint…") as stop:
        try:
            result = training_loop(
                config, run_dir, resume=resume is not None, progress=progress, should_abort=stop
            )
        except BaseException as exc:
            if rank == 0:
                _failed(run_dir, created=resume is None, error=exc)
            raise
        finally:
            line.finish()
    if rank == 0:
        print(json.dumps({"run": str(run_dir), **result}))
    return (stop.exit_code if result["status"] == "aborted" else EXIT_OK), run_dir


def _failed(run_dir: Path, *, created: bool, error: BaseException) -> None:
    """A run that failed before its first checkpoint is removed (it holds nothing to resume, and a stray
    numbered folder would shift the names of the next runs); a later failure is marked in status.json."""
    import shutil

    from trainer.runs import CHECKPOINT, write_status

    if created and not (run_dir / CHECKPOINT).is_file():
        shutil.rmtree(run_dir, ignore_errors=True)
        print(
            f"diat-studio-train: the run failed before its first checkpoint; removed {run_dir}",
            file=sys.stderr,
        )
    elif run_dir.is_dir():
        write_status(run_dir, status="failed", error=f"{type(error).__name__}: {error}"[:2000])
        print(f"diat-studio-train: the run failed; its last checkpoint is kept in {run_dir}", file=sys.stderr)


def _shared_run_folder(config: Any, rank: int) -> Path:
    """Rank 0 makes the numbered folder; under torchrun the others learn its name by broadcast."""
    from trainer.runs import new_run_folder

    world = int(os.environ.get("WORLD_SIZE", "1"))
    name = config.name or "-".join(
        filter(
            None,
            [
                config.attribute,
                config.direction if config.attribute else None,
                config.variant if config.stage == "diat" else None,
            ],
        )
    )
    if world <= 1:
        return new_run_folder(Path(config.runs_dir), config.stage, name)
    import torch
    import torch.distributed as torch_dist

    if not torch_dist.is_initialized():
        use_nccl = config.device != "cpu" and torch.cuda.is_available()
        torch_dist.init_process_group("nccl" if use_nccl else "gloo")
    holder = [str(new_run_folder(Path(config.runs_dir), config.stage, name)) if rank == 0 else ""]
    torch_dist.broadcast_object_list(holder, src=0)
    return Path(holder[0])


def _run_classifier(options: argparse.Namespace) -> int:
    from trainer.config import TrainConfig

    config = TrainConfig(
        stage="evaluator",
        data=options.data,
        attribute=options.attribute,
        steps=options.steps,
        batch_size=options.batch_size,
        classifier_width=options.classifier_width,
        runs_dir=options.runs_dir,
        device=options.device,
        lr=3e-4,
        augment=options.augment,
        sample_every=max(options.steps // 5, 1),
        checkpoint_every=max(options.steps // 5, 1),
        name=f"{options.attribute}-classifier",
    )
    config = _checked(config, set())
    if options.dry_run:
        print(config.to_json(), end="")
        return EXIT_OK
    code, run = _train_run(config, None, options.quiet)
    if code == EXIT_OK:
        print(classifier_report(run))
    return code


def classifier_report(run: Path) -> str:
    """The held-out balanced accuracy of a classifier run, said plainly (and loudly near chance)."""
    from trainer.evaluate import EVALUATOR_MIN_ACCURACY, classifier_accuracy_of

    accuracy = classifier_accuracy_of(run)
    if accuracy is None:
        return f"{run.name}: no held-out accuracy (the dataset has no held-out faces of one value)"
    text = f"{run.name}: held-out balanced accuracy {100 * accuracy:.1f}% (50% = chance)"
    if accuracy < EVALUATOR_MIN_ACCURACY:
        text += (
            f"\nWARNING: below {100 * EVALUATOR_MIN_ACCURACY:.0f}%: as an evaluator it can hardly tell the "
            "attribute; success rates it judges mean little (train longer or on more faces)"
        )
    return text


def _transform_passes(text: str) -> int:
    """`export --passes`: a number of passes the manifest accepts. Checked when the option is read, not
    when the parser is built: the manifest module loads OpenCV, which every command would pay for."""
    from diat_studio.core.manifest import MAX_TRANSFORM_PASSES

    passes = int(text) if text.strip().isdigit() else 0
    if not 1 <= passes <= MAX_TRANSFORM_PASSES:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (from 1 to {MAX_TRANSFORM_PASSES})")
    return passes


def _run_export(options: argparse.Namespace) -> int:
    from trainer.export import export_model, install_model, staged_export

    if options.out is None and not options.install:
        raise ValueError("export needs --out DIR, --install, or both")
    name = options.name or (options.out.name if options.out else _run_model_name(options.run))
    settings = {
        "enhancer_run": options.enhancer,
        "name": name,
        "display_name": options.display_name,
        "experimental": options.experimental,
        "passes": options.passes,
        "mirror_average": options.mirror_average,
    }
    if options.out is not None:
        folder = export_model(options.run, options.out, **settings)
        print(f"exported to {folder}")
        if options.install:
            installed = install_model(folder, replace=options.force)
            print(f"installed: {installed}")
        return EXIT_OK
    installed = staged_export(options.run, replace=options.force, **settings)
    print(f"exported and installed: {installed}")
    return EXIT_OK


def _run_model_name(run: Path) -> str:
    """A model name for a run: its config's name, else the folder name without its number."""
    from trainer.runs import run_config

    name = str(run_config(run).get("name") or "")
    return name or run.name.split("-", 1)[-1]


def _run_evaluate(options: argparse.Namespace) -> int:
    from trainer.evaluate import EvaluationSizes, evaluate_model

    names = (
        "limit", "two_sample_steps", "grey_faces", "already_target", "grid_faces", "occluded_faces", "seed",
    )  # fmt: skip
    sizes = EvaluationSizes(
        **{name: getattr(options, name) for name in names if getattr(options, name) is not None}
    )
    classifier = options.classifier or _default_evaluator(options.model, options.runs_dir)
    report = evaluate_model(
        options.model,
        options.data,
        classifier,
        update_manifest=not options.no_manifest,
        quality_bar=options.quality_bar,
        split=options.split,
        sizes=sizes,
    )
    print(json.dumps(report["metrics"], indent=2))
    for warning in report.get("warnings", []):
        print(f"diat-studio-train: WARNING: {warning}", file=sys.stderr)
    return EXIT_OK


def _default_evaluator(model: Path, runs_dir: Path) -> Path:
    from trainer.classifier_store import find_classifier

    try:
        attribute = json.loads((Path(model) / "manifest.json").read_text())["attribute"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{model} is not an exported model (its manifest.json: {error})") from error
    found = find_classifier(runs_dir, "evaluator", attribute)
    if found is None:
        raise ValueError(
            f"no evaluator for {attribute} in {runs_dir} nor carried in trainer/classifiers: "
            "pass --classifier (train one with `diat-studio-train classifier`)"
        )
    return found


if __name__ == "__main__":
    sys.exit(main())
