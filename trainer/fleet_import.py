"""`diat-studio-train fleet-import RESULTS --data DATA`: bring a fleet's results home, measure them on every
held-out face exactly as the shipped models were measured, compare, and (with `ship=True`) replace the
shipped model of each edit where the fleet's is better.

Better: meets more of the measured targets of the quality bar (trainer.quality); at equal count, more
points of success over the blur control. The looked-at grid is not one of them: a person counts the
shipped model's, nobody has looked at the candidate's yet, so counting it would favour the candidate for
not having been looked at. The comparison reads the shipped model's manifest metrics where the same
evaluator on the same number of held-out faces measured them; where another did (a run of the same name
rebuilt on another machine is another evaluator: its held-out accuracy differs), the shipped model is
measured again here first, in a copy — its folder is not touched. With `evaluate=False` (the GPU's
preview, on fewer faces) the two are never comparable, and nothing ships.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trainer.fleet import FLEET_FILE, FLEET_FORMAT
from trainer.quality import GRID_ARTEFACTS, QUALITY_BAR, missed_targets

COLUMNS = (
    ("attribute_success_rate", "success", True),
    ("blur_control_success_rate", "blur", True),
    ("identity_mean_distance", "id dist", False),
    ("two_sample_accuracy", "2-sample", True),
    ("mean_delta_e_face", "ΔE", False),
)


@dataclass(frozen=True)
class ImportOptions:
    results: Path
    data: Path
    runs_dir: Path = Path("runs")
    models: Path = Path("resources/models")
    work: Path = Path("build/fleet-import")
    ship: bool = False
    edits: tuple[str, ...] = ()
    """Only these edits (default: every edit in the results)."""
    evaluate: bool = True
    """False: compare the metrics the fleet measured on the GPU (a preview on fewer faces)."""
    sizes: Any = None
    """trainer.evaluate.EvaluationSizes (default: the sizes of the shipped models' numbers)."""
    install_classifiers: bool = False
    """The guides and evaluators the fleet trained (`pack --classifiers-on-device`) replace the ones the
    repository carries, before anything is measured: the candidates and the shipped models are then judged
    by the new evaluators (each shipped model is measured again)."""
    chosen_classifiers: tuple[str, ...] = ()
    """Only these of them (`guide-Male`, `evaluator-Young`, …); default: every one."""
    classifiers_root: Path | None = None
    """Where the carried classifiers are (default: trainer.classifier_store.CLASSIFIERS_DIR; tests)."""


def import_results(options: ImportOptions, say: Any = print) -> list[dict[str, Any]]:
    """Unpack, evaluate, compare (and ship); one row per edit."""
    summary = json.loads((Path(options.results) / FLEET_FILE).read_text())
    if summary.get("format") != FLEET_FORMAT:
        raise ValueError(f"{options.results}/{FLEET_FILE} is not a fleet summary")
    rows = []
    unknown = [name for name in options.edits if name not in summary["edits"]]
    if unknown:
        raise ValueError(
            f"the results have no edit {unknown[0]!r} (they have: {', '.join(summary['edits'])})"
        )
    if summary.get("classifiers_file"):
        _import_classifiers(Path(options.results) / summary["classifiers_file"], options, say)
    for name, entry in sorted(summary["edits"].items()):
        if options.edits and name not in options.edits:
            continue
        row: dict[str, Any] = {"edit": name, "fleet": entry}
        if entry.get("status") != "done" and not entry.get("checkpoint"):
            row["decision"] = f"failed on the GPU: {(entry.get('error') or '?').strip().splitlines()[-1]}"
            rows.append(row)
            continue
        folder = _unpack(Path(options.results) / entry["file"], Path(options.work), name)
        candidate = folder / "model"
        if not (candidate / "manifest.json").is_file():  # trained, but export or evaluation failed there
            say(f"fleet-import: {name} came back without a model; exporting its checkpoint here")
            _export_here(folder / "run", candidate, name, Path(options.data))
        shipped = Path(options.models) / name
        current = _current_metrics(shipped)
        if options.evaluate:
            say(f"fleet-import: evaluating {name} on every held-out face of {options.data}…")
            metrics = _evaluate(candidate, name, options)
            if current and _judge(current) != _judge(metrics):
                say(
                    f"fleet-import: the shipped {name} was measured by {current.get('classifier')} on "
                    f"{current.get('heldout_faces')} faces; measuring it again as the candidate was…"
                )
                looked_at = {GRID_ARTEFACTS: current[GRID_ARTEFACTS]} if GRID_ARTEFACTS in current else {}
                current = _evaluate(shipped, name, options, stage="shipped", copy_back=False) | looked_at
                row["remeasured"] = True
        else:
            metrics = entry.get("metrics", {})
        row.update(candidate=metrics, current=current)
        if current and _judge(current) != _judge(metrics):  # only the GPU's preview gets here
            row["better"] = False
            row["decision"] = (
                "not comparable: another evaluator or other faces (compare without --no-evaluate)"
            )
        else:
            row["better"] = _better(metrics, current)
            if row["better"] and options.ship:
                ship(candidate, shipped)
                row["decision"] = "shipped"
            else:
                row["decision"] = "better — ship with --ship" if row["better"] else "kept the shipped model"
        rows.append(row)
    say(comparison_table(rows))
    if any(row["decision"] == "shipped" for row in rows):
        say("fleet-import: look at the grids of each model it shipped at 100% before committing")
    return rows


def _unpack(archive: Path, work: Path, name: str) -> Path:
    """The edit's folder (model/ and run/) unpacked under `work`, replacing an earlier import."""
    work.mkdir(parents=True, exist_ok=True)
    if (work / name).exists():
        shutil.rmtree(work / name)
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")  # no absolute paths, links out or devices
    return work / name


def _import_classifiers(archive: Path, options: ImportOptions, say: Any) -> None:
    """Unpack the fleet's classifiers under work/classifiers; with `install_classifiers`, carry them."""
    from trainer.classifier_store import KINDS, heldout_accuracy, install

    work = Path(options.work)
    work.mkdir(parents=True, exist_ok=True)
    if (work / "classifiers").exists():
        shutil.rmtree(work / "classifiers")
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    for folder in sorted((work / "classifiers").iterdir()):
        kind, _, attribute = folder.name.partition("-")
        if kind not in KINDS:
            continue
        accuracy = heldout_accuracy(folder)
        shown = "—" if accuracy is None else f"{100 * accuracy:.1f}% on the pack's held-out faces"
        chosen = not options.chosen_classifiers or folder.name in options.chosen_classifiers
        if options.install_classifiers and chosen:
            target = install(folder, kind, attribute, options.classifiers_root)
            say(f"fleet-import: {kind} {attribute} ({shown}) installed in {target}")
        else:
            say(f"fleet-import: {kind} {attribute} ({shown}) in {folder} (--install-classifiers carries it)")


def _export_here(run: Path, out: Path, name: str, data: Path) -> None:
    from trainer.export import export_model
    from trainer.runs import CONFIG_FILE

    config = json.loads((run / CONFIG_FILE).read_text())
    config["data"] = str(data)  # the dataset the pack came from (same template)
    (run / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    export_model(run, out, name=name, experimental=True)


def _evaluate(
    model_dir: Path, name: str, options: ImportOptions, stage: str = "models", copy_back: bool = True
) -> dict[str, Any]:
    """`evaluate --quality-bar` of a copy of `model_dir` (under work/`stage`/), with its attribute's newest
    evaluator run in `runs_dir`, else the carried one; `copy_back`: the numbers and grids go into
    `model_dir` too."""
    from trainer.classifier_store import find_classifier
    from trainer.evaluate import evaluate_model

    # the registry wants the model in a folder of models, named as the model
    staged = Path(options.work) / stage / name
    if staged.exists():
        shutil.rmtree(staged)
    shutil.copytree(model_dir, staged)
    attribute = json.loads((staged / "manifest.json").read_text())["attribute"]
    evaluator = find_classifier(Path(options.runs_dir), "evaluator", attribute, options.classifiers_root)
    if evaluator is None:
        raise ValueError(
            f"no evaluator for {attribute} in {options.runs_dir} nor carried by the repository "
            "(scripts/train_bundled.sh classifiers)"
        )
    report = evaluate_model(staged, Path(options.data), evaluator, quality_bar=True, sizes=options.sizes)
    for file in staged.iterdir() if copy_back else ():  # the held-out numbers and grids go with the model
        shutil.copy2(file, model_dir / file.name)
    return report["metrics"] | {"quality_bar_missed": report.get("quality_bar_missed", [])}


def _current_metrics(model_dir: Path) -> dict[str, Any] | None:
    path = model_dir / "manifest.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text()).get("metrics") or None


def _judge(metrics: dict[str, Any]) -> tuple[Any, ...]:
    """Who measured `metrics`, and on how many faces: numbers are comparable only where this is equal."""
    return (
        metrics.get("classifier"),
        metrics.get("classifier_heldout_balanced_accuracy"),
        metrics.get("heldout_faces"),
    )


def _met(metrics: dict[str, Any]) -> int:
    """Measured targets met (of QUALITY_BAR); the looked-at grid is left out on both sides."""
    return len(QUALITY_BAR) - len([key for key in missed_targets(metrics) if key != GRID_ARTEFACTS])


def _better(candidate: dict[str, Any], current: dict[str, Any] | None) -> bool:
    if not current:
        return True
    key = (_met(candidate), float(candidate.get("success_over_blur_points", -1e9)))
    return key > (_met(current), float(current.get("success_over_blur_points", -1e9)))


def ship(candidate: Path, target: Path) -> None:
    """Replace `target` by a copy of `candidate`: copied beside it first, then swapped by renames."""
    incoming = target.with_name(f".{target.name}.incoming")
    replaced = target.with_name(f".{target.name}.replaced")
    for leftover in (incoming, replaced):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(candidate, incoming)
    if target.exists():
        os.replace(target, replaced)
    os.replace(incoming, target)
    if replaced.exists():
        shutil.rmtree(replaced)


def comparison_table(rows: list[dict[str, Any]]) -> str:
    head = (
        "| edit | model | measured targets met | "
        + " | ".join(label for _, label, _ in COLUMNS)
        + " | decision |"
    )
    lines = [head, "|---|---|---:|" + "---:|" * len(COLUMNS) + "---|"]
    for row in rows:
        for which in ("current", "candidate"):
            metrics = row.get(which)
            if metrics is None and which == "candidate":
                lines.append(
                    f"| {row['edit']} | fleet | — |" + " — |" * len(COLUMNS) + f" {row['decision']} |"
                )
                continue
            if metrics is None:
                continue
            cells = [_cell(metrics.get(key), percent) for key, _, percent in COLUMNS]
            decision = row["decision"] if which == "candidate" else ""
            label = f"fleet ({row['fleet'].get('steps', '?')} steps)"
            if which == "current":
                label = "shipped (measured again)" if row.get("remeasured") else "shipped"
            lines.append(
                f"| {row['edit']} | {label} | {_met(metrics)}/{len(QUALITY_BAR)} | "
                + " | ".join(cells)
                + f" | {decision} |"
            )
    return "\n".join(lines)


def _cell(value: Any, percent: bool) -> str:
    if value is None:
        return "—"
    return f"{100 * float(value):.1f}%" if percent else f"{float(value):.3g}"
