"""The lent-GPU commands of `diat-studio-train`: `pack`, `fleet` and `fleet-import` (docs/TRAINING.md,
"Training on a lent GPU")."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from trainer.fleet_classifiers import ClassifierPlan

#: The training minutes `make gpu-pack` plans for: 15 minutes of device time in all, of which start-up
#: takes a few, unpacking, export and evaluation about two.
PLANNED_MINUTES = 6.0
PLANNED_TIMEOUT_S = 570


def add_commands(commands: argparse._SubParsersAction) -> None:
    pack = commands.add_parser(
        "pack", help="everything a lent GPU needs to train the bundled edits, ≤ 64 MiB"
    )
    pack.add_argument(
        "data", type=Path, help="a prepared dataset (data/wild: scripts/train_bundled.sh prepare)"
    )
    pack.add_argument("out", type=Path, help="the pack folder to write (e.g. build/gpu-pack)")
    pack.add_argument("--edits", help="comma-separated edit names (default: the bundled edits)")
    pack.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the classifier runs are")
    pack.add_argument(
        "--guide",
        action="append",
        default=[],
        metavar="ATTRIBUTE=RUN",
        help="the guide classifier of an attribute (default: the newest classify-guide run)",
    )
    pack.add_argument(
        "--evaluator",
        action="append",
        default=[],
        metavar="ATTRIBUTE=RUN",
        help="the evaluator of an attribute (default: the newest evaluator run)",
    )
    pack.add_argument(
        "--continue",
        dest="continue_from",
        action="append",
        default=[],
        metavar="EDIT=RUN",
        help="that edit's fleet run goes on from this `edit` run's editor (e.g. a run fleet-import unpacked) "
        "or from an installed model's folder (e.g. resources/models/EDIT)",
    )
    pack.add_argument("--quality", type=int, default=88, help="WebP quality of the crops (default 88)")
    pack.add_argument(
        "--heldout-faces", type=int, default=300, help="held-out faces that travel (default 300)"
    )
    pack.add_argument("--max-train-faces", type=int, default=0, help="0 (default): every training face")
    pack.add_argument(
        "--classifiers-on-device",
        action="store_true",
        help="carry no guides or evaluators: the fleet trains them first and brings them back",
    )
    pack.add_argument("--force", action="store_true", help="replace an existing pack")
    pack.add_argument("--no-budget", action="store_true", help="skip the 64 MiB travel check (tests)")
    pack.set_defaults(handler=_run_pack)

    fleet = commands.add_parser("fleet", help="train every edit of a pack at once on one GPU")
    fleet.add_argument("pack", type=Path)
    fleet.add_argument("--minutes", type=float, required=True, help="training wall time")
    fleet.add_argument("--out", type=Path, required=True, help="results: one .tar.gz per edit + fleet.json")
    fleet.add_argument("--work", type=Path, help="dataset and run folders (default: a temporary folder)")
    fleet.add_argument("--edits", help="comma-separated subset of the pack's edits")
    fleet.add_argument("--device", default="auto")
    fleet.add_argument("--batch-size", type=int, default=64)
    fleet.add_argument("--transform-width", type=int, default=32)
    fleet.add_argument("--discriminator-width", type=int, default=32)
    fleet.add_argument("--lr", type=float, default=2e-4)
    fleet.add_argument("--ema-decay", type=float, default=0.999)
    fleet.add_argument("--evaluate-faces", type=int, default=300)
    fleet.add_argument("--two-sample-steps", type=int, default=200)
    fleet.add_argument("--threads", type=int, default=0, help="CPU threads per edit (0: shared out)")
    plan = ClassifierPlan()
    fleet.add_argument(
        "--guide-steps",
        type=int,
        default=plan.guide_steps,
        help=f"where the pack carries no classifiers: each guide's steps (default {plan.guide_steps})",
    )
    fleet.add_argument("--evaluator-steps", type=int, default=plan.evaluator_steps)
    fleet.add_argument("--classifier-batch-size", type=int, default=plan.batch_size)
    fleet.add_argument("--classifier-minutes", type=float, default=plan.minutes)
    fleet.add_argument(
        "--classifier-augment", default=plan.augment, help=f"their augmentation (default {plan.augment!r})"
    )
    fleet.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=JSON",
        help="any other TrainConfig field for every edit, e.g. --set r1_every=8; for one edit, "
        "EDIT:FIELD=JSON, e.g. --set close-mouth:detail_gate=1.5",
    )
    fleet.set_defaults(handler=_run_fleet)

    fleet_import = commands.add_parser(
        "fleet-import", help="measure a fleet's results on the held-out faces, compare, ship the better"
    )
    fleet_import.add_argument("results", type=Path, help="the fleet's --out folder")
    fleet_import.add_argument("--data", type=Path, required=True, help="the dataset the pack was built from")
    fleet_import.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where the evaluators are")
    fleet_import.add_argument("--models", type=Path, default=Path("resources/models"))
    fleet_import.add_argument("--work", type=Path, default=Path("build/fleet-import"))
    fleet_import.add_argument("--edits", help="comma-separated subset of the results' edits")
    fleet_import.add_argument("--ship", action="store_true", help="replace the shipped models that lose")
    fleet_import.add_argument(
        "--install-classifiers",
        nargs="?",
        const="",
        metavar="NAMES",
        help="carry the guides and evaluators the fleet trained in trainer/classifiers (they judge next); "
        "optionally only some, e.g. guide-Male,evaluator-Male",
    )
    fleet_import.add_argument(
        "--no-evaluate",
        action="store_true",
        help="compare the GPU's preview numbers instead (fewer faces, no photo grid)",
    )
    fleet_import.set_defaults(handler=_run_fleet_import)


def _pairs(values: list[str], option: str, key: str = "ATTRIBUTE") -> tuple[tuple[str, Path], ...]:
    pairs = []
    for value in values:
        attribute, sep, run = value.partition("=")
        if not sep or not attribute or not run:
            raise ValueError(f"{option} takes {key}=RUN, got {value!r}")
        pairs.append((attribute, Path(run)))
    return tuple(pairs)


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip()) if value else ()


def _run_pack(options: argparse.Namespace) -> int:
    from trainer.pack import PackOptions, build_pack, repository_bytes

    manifest = build_pack(
        PackOptions(
            data=options.data,
            out=options.out,
            runs_dir=options.runs_dir,
            edits=_names(options.edits),
            quality=options.quality,
            heldout_faces=options.heldout_faces,
            max_train_faces=options.max_train_faces,
            guides=_pairs(options.guide, "--guide"),
            evaluators=_pairs(options.evaluator, "--evaluator"),
            continue_from=_pairs(options.continue_from, "--continue", "EDIT"),
            classifiers_on_device=options.classifiers_on_device,
            force=options.force,
            check_budget=not options.no_budget,
        )
    )
    mib = 2**20
    repository = repository_bytes()
    faces = manifest["faces"]
    print(
        f"pack: {options.out} — {manifest['bytes'] / mib:.1f} MiB "
        f"({faces['train']} training + {faces['heldout']} held-out faces, {len(manifest['edits'])} edits)"
    )
    if repository is not None:
        print(f"travels with the repository: {(manifest['bytes'] + repository) / mib:.1f} of 64 MiB")
    print(f"traded to fit: {manifest['traded']}")
    print(
        "\nOn the lent GPU (the `run` tool of the device library; one call, no kind needed):\n"
        f'  carry:     ["{options.out}"]\n'
        f"  timeout_s: {PLANNED_TIMEOUT_S}\n"
        f"  command:   python3 -m trainer.cli fleet {options.out} --minutes {PLANNED_MINUTES:g} --out $OUT\n"
        "Results land in the reply's files_at folder (one .tar.gz per edit + fleet.json). Then, here:\n"
        "  .venv/bin/diat-studio-train fleet-import FILES_AT --data data/wild          # compare\n"
        "  .venv/bin/diat-studio-train fleet-import FILES_AT --data data/wild --ship   # replace the losers\n"
        "and rewrite the cards (scripts/write_model_card.py) and the README table (scripts/models_table.py)."
    )
    return 0


def _run_fleet(options: argparse.Namespace) -> int:
    import json

    from trainer.fleet import FleetOptions, check_results, run_fleet

    overrides: dict[str, Any] = {}
    edit_overrides: dict[str, dict[str, Any]] = {}
    for item in options.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--set takes FIELD=JSON or EDIT:FIELD=JSON, got {item!r}")
        edit, colon, name = key.rpartition(":")
        target = edit_overrides.setdefault(edit, {}) if colon else overrides
        target[name.replace("-", "_")] = json.loads(value)
    summary = run_fleet(
        FleetOptions(
            pack=options.pack,
            out=options.out,
            minutes=options.minutes,
            work=options.work,
            edits=_names(options.edits),
            device=options.device,
            batch_size=options.batch_size,
            transform_width=options.transform_width,
            discriminator_width=options.discriminator_width,
            lr=options.lr,
            ema_decay=options.ema_decay,
            evaluate_faces=options.evaluate_faces,
            two_sample_steps=options.two_sample_steps,
            threads=options.threads,
            overrides=overrides,
            edit_overrides=edit_overrides,
            classifiers=ClassifierPlan(
                guide_steps=options.guide_steps,
                evaluator_steps=options.evaluator_steps,
                batch_size=options.classifier_batch_size,
                minutes=options.classifier_minutes,
                augment=options.classifier_augment,
            ),
        ),
        say=lambda text: print(text, flush=True),
    )
    for name, entry in summary["edits"].items():
        metrics = entry.get("metrics", {})
        print(
            f"{name}: {entry['status']}, {entry['steps']} steps, {entry.get('images_per_second')} images/s, "
            f"success {metrics.get('attribute_success_rate', '—')} "
            f"(blur {metrics.get('blur_control_success_rate', '—')}), "
            f"{entry.get('verdict', '')}"
        )
    problems = check_results(options.out)
    if problems:
        print("fleet: the results break the return limits: " + "; ".join(problems), file=sys.stderr)
        return 1
    print(f"fleet: done in {summary['wall_seconds']:.0f} s — {options.out}")
    return 0 if all(e["status"] == "done" for e in summary["edits"].values()) else 1


def _run_fleet_import(options: argparse.Namespace) -> int:
    from trainer.fleet_import import ImportOptions, import_results

    import_results(
        ImportOptions(
            results=options.results,
            data=options.data,
            runs_dir=options.runs_dir,
            models=options.models,
            work=options.work,
            ship=options.ship,
            edits=_names(options.edits),
            evaluate=not options.no_evaluate,
            install_classifiers=options.install_classifiers is not None,
            chosen_classifiers=_names(options.install_classifiers),
        )
    )
    return 0
