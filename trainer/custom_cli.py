"""The `custom` command of `diat-studio-train`: your own attribute from two folders of photos, in one
command (trainer/custom.py does the work, trainer/custom_plan.py the checks)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from trainer.custom_plan import (
    MIN_PHOTOS,
    PRESETS,
    REGIONS,
    USER_PRESETS,
    CustomRequest,
    Plan,
    default_threads,
)

EXIT_OK = 0
EXIT_FAILED = 1


def _preset_help() -> str:
    minutes = "; ".join(f"{name} ≈ {PRESETS[name].cpu_minutes} min" for name in USER_PRESETS)
    return (
        f"how long to train (default quick). Measured wall time of the whole command on a 2-core CPU for "
        f"2 × 50 photos: {minutes}; more photos add about a minute per hundred"
    )


def add_custom_command(commands: argparse._SubParsersAction) -> None:
    custom = commands.add_parser(
        "custom",
        help="your own attribute from two folders of photos: prepare, train, export, evaluate, install",
        description="Train an edit from two folders of photos — with and without the attribute — in one "
        "command: prepare → guide classifier → evaluator → edit (the recipe of the bundled edits) → export "
        "→ evaluate (quality bar) → install. Every step is checked before any work starts, skipped when "
        "finished and resumed when cut short: run the same command again after Ctrl-C, SIGTERM or a crash.",
    )
    custom.add_argument("with_dir", type=Path, metavar="WITH_DIR", help="photos with the attribute")
    custom.add_argument("without_dir", type=Path, metavar="WITHOUT_DIR", help="photos without it")
    custom.add_argument(
        "--name", required=True, help="the edit's name, e.g. add-beard (the app and `batch --edit NAME`)"
    )
    custom.add_argument(
        "--region",
        default="face",
        help=f"where the edit works: {', '.join(REGIONS)} (default face: the whole face)",
    )
    custom.add_argument(
        "--region-margin",
        type=float,
        help="mouth or eyes: the margin around the region's landmarks, in eye distances (default: the "
        "region's own; 0.45 for eyes covers a glasses frame, docs/ABLATION.md)",
    )
    custom.add_argument(
        "--direction",
        default="add",
        help="add (default): turn faces without the attribute into faces with it; remove: the reverse",
    )
    custom.add_argument("--preset", default="quick", metavar="|".join(USER_PRESETS), help=_preset_help())
    custom.add_argument("--install", action="store_true", help="install the model for the app and `batch`")
    custom.add_argument(
        "--dry-run", action="store_true", help="run every check, print the plan and exit (nothing is written)"
    )
    custom.add_argument(
        "--force",
        action="store_true",
        help="start again in a workspace made for other photos or settings, and replace an installed model "
        "of the same name that this workspace did not make",
    )
    custom.add_argument("--attribute", help="the attribute's name in the data (default: from --name)")
    custom.add_argument("--display-name", help="the name the app shows (default: from --name)")
    custom.add_argument(
        "--workspace", type=Path, help="where the data, runs, model and log go (default: custom/NAME)"
    )
    custom.add_argument("--device", default="auto", help="auto (default), cpu or cuda")
    custom.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8), help="processes aligning")
    custom.add_argument(
        "--threads",
        type=int,
        default=default_threads(),
        help=f"torch threads for training and evaluation (default {default_threads()}: half the cores)",
    )
    custom.add_argument(
        "--json-progress",
        action="store_true",
        help="progress as JSON lines on stdout (for the window); messages stay on stderr",
    )
    custom.add_argument("--steps-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    custom.add_argument("--models-dir", type=Path, help=argparse.SUPPRESS)
    custom.set_defaults(handler=_run_custom)


def _request(options: argparse.Namespace) -> CustomRequest:
    return CustomRequest(
        with_dir=options.with_dir,
        without_dir=options.without_dir,
        name=options.name,
        region=options.region,
        region_margin=options.region_margin,
        direction=options.direction,
        attribute=options.attribute,
        display_name=options.display_name,
        preset=options.preset,
        install=options.install,
        force=options.force,
        workspace=options.workspace,
        models_dir=options.models_dir,
        device=options.device,
        workers=options.workers,
        threads=options.threads,
        steps_scale=options.steps_scale,
    )


def _run_custom(options: argparse.Namespace) -> int:
    from diat_studio.core.errors import DiatError
    from trainer.custom import Stopped, run_custom, steps_of
    from trainer.custom_plan import validate
    from trainer.custom_report import Reporter
    from trainer.stopping import StopRequests

    plan = validate(_request(options))  # CheckError: every problem, exit 2, nothing written
    for warning in plan.warnings:
        print(f"diat-studio-train: WARNING: {warning}", file=sys.stderr)
    if options.dry_run:
        print(describe(plan))
        return EXIT_OK
    events = sys.stdout if options.json_progress else None
    reporter = Reporter(plan.log, events=events, weights=plan.expected_seconds())
    reporter.say(f"custom {plan.name}: {len(steps_of(plan))} steps, log: {plan.log}")
    with StopRequests("stopping: the work so far is kept…") as stop:
        try:
            outcome = run_custom(plan, reporter, stop)
        except Stopped as exc:
            reporter.say("stopped: run the same command again to continue where it stopped")
            reporter.event("stopped", exit_code=exc.exit_code)
            return exc.exit_code
        except (DiatError, ValueError, FileNotFoundError) as exc:
            reporter.say(f"diat-studio-train: error: {exc}")
            reporter.event("error", message=str(exc))
            return EXIT_FAILED
    for line in summary(plan, outcome.metrics, outcome.experimental, outcome.installed):
        reporter.result(line)
    reporter.event(
        "finished",
        name=plan.name,
        model=str(outcome.model.resolve()),
        installed=str(outcome.installed) if outcome.installed else None,
        experimental=outcome.experimental,
    )
    return EXIT_OK


def describe(plan: Plan) -> str:
    """The plan `--dry-run` prints."""
    from trainer.custom import steps_of

    seconds = plan.expected_seconds()
    request, preset = plan.request, plan.preset
    what = {
        "prepare": f"{preset.crop_size} px crops, {plan.photos['with']} + {plan.photos['without']} photos",
        "guide": f"{plan.steps('guide')} steps → {plan.runs / 'guide'}",
        "evaluator": f"{plan.steps('evaluator')} steps → {plan.runs / 'evaluator'}",
        "edit": f"{plan.steps('edit')} steps, region {request.region}"
        + (f" (margin {request.region_margin:g})" if request.region_margin is not None else "")
        + f" → {plan.runs / 'edit'}",
        "export": f"→ {plan.model}",
        "evaluate": "held-out faces, --quality-bar",
        "install": f"→ {plan.install_to}",
    }
    lines = [
        f"Plan for {plan.display_name!r} ({plan.name}): {request.direction} {plan.attribute!r}, preset "
        f"{preset.name}, about {sum(seconds.values()) / 60:.0f} minutes on a 2-core CPU",
        f"  photos with: {request.with_dir} ({plan.photos['with']}); without: {request.without_dir} "
        f"({plan.photos['without']})",
        f"  workspace: {plan.workspace} (plan.json, data/, runs/, model/, custom.log)"
        + ("  — will be emptied first (--force)" if plan.replace_workspace else ""),
    ]
    for index, (key, _title) in enumerate(steps_of(plan), 1):
        lines.append(f"  {index}. {key:<9} {what[key]} (≈ {seconds[key] / 60:.1f} min)")
    lines.append(f"Every check passed (at least {MIN_PHOTOS} photos per folder); nothing was written.")
    return "\n".join(lines)


def summary(plan: Plan, metrics: dict, experimental: bool, installed: Path | None) -> list[str]:
    """Where the model is, what it scored, and how to use it."""
    lines = [f"Done: {plan.display_name!r} ({plan.name})", f"  model folder: {plan.model.resolve()}"]
    if "attribute_success_rate" in metrics:
        lines.append(
            f"  held-out faces: attribute success {100 * metrics['attribute_success_rate']:.0f}% (before the "
            f"edit {100 * metrics.get('attribute_rate_before_edit', 0):.0f}%), identity kept "
            f"{100 * metrics.get('identity_kept_rate', 0):.0f}% — grids: {plan.model / 'evaluation.png'}"
        )
    if metrics.get("evaluator_near_chance"):
        lines.append(
            "  WARNING: the evaluator is near chance: the success rate above means little (more photos or a "
            "larger preset)"
        )
    experimental_flag = " --experimental" if experimental else ""
    if experimental:
        missed = metrics.get("quality_bar_missed") or []
        lines.append(
            f"  quality bar: {len(missed)} target(s) missed, so the model is marked experimental: the app "
            "shows it after Settings › Show experimental models, `diat-studio batch` with --experimental"
        )
    if installed is not None:
        lines += [
            f"  installed: {installed}",
            "Use it:",
            f"  in the app: diat-studio PHOTO, then choose {plan.display_name!r} in the edits list",
            f"  on a folder: diat-studio batch IN_DIR OUT_DIR --edit {plan.name}{experimental_flag}",
        ]
    else:
        folder = plan.model.parent.resolve()
        lines += [
            "  not installed (run the same command with --install to install it)",
            "Use it:",
            f"  in the app: add {folder} under Settings › Model folders, then choose {plan.display_name!r}",
            f"  on a folder: diat-studio batch IN_DIR OUT_DIR --edit {plan.name} --models-dir {folder}"
            f"{experimental_flag}",
        ]
    return lines
