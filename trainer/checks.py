"""What `train` and `classifier` check before a run folder is made and before a minute is spent.

Every problem found is reported at once (one line each), and `--dry-run` runs exactly these checks:

- the dataset is a prepared one, the attribute is one of its columns, and the split has training faces of
  both values the stage needs;
- every earlier run named (`--init-transform`, `--denoiser`, …) is a run folder of a stage that option
  takes, with a checkpoint; a guide classifier is for the same attribute; an `edit` run's
  `--init-transform` may also be an installed model's folder (trainer.model_import), whose editor's low-pass
  and detail gate the run takes unless it asks for others;
- widths: a network initialised from an earlier run has that run's width, so the run's width is taken
  (and recorded, which `export` relies on) unless a different one was asked for, which is refused;
- `--resume`: the run is not being trained by another process right now, `--steps` does not go back
  behind its checkpoint, and its architecture (widths, editor) is not changed.

Regions, directions, variants and the other enumerations are checked by TrainConfig itself. Warnings
(printed, not refused) name choices that are legal but rarely meant, such as the paper's `diat` stage
without its pretrained T or its denoiser.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from diat_studio.core.manifest import MAX_REGION_MARGIN
from trainer.config import TrainConfig
from trainer.data import DatasetError, PreparedDataset
from trainer.model_import import ModelImportError, is_model_folder, read_model_editor
from trainer.run_lock import RunLockedError, check_unlocked
from trainer.runs import CHECKPOINT, CONFIG_FILE, STATUS_FILE, load_checkpoint

#: For each stage, the fields naming an earlier run and the stages whose runs they accept.
RUN_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "diat": {
        "init_transform": ("reconstruct", "perceptual", "diat"),
        "init_discriminator": ("classify", "diat"),
        "denoiser": ("denoise",),
    },
    "edit": {
        "init_transform": ("edit",),
        "init_discriminator": ("edit",),
        "attribute_classifier": ("classify",),
        "teacher": ("edit",),
    },
    "denoise": {"reconstruction": ("perceptual",)},
    "enhance-local": {"transform_run": ("diat",)},
}

#: Fields naming a run that no stage of this table uses are still checked for existence.
ALL_RUN_FIELDS = (
    "init_transform",
    "init_discriminator",
    "denoiser",
    "reconstruction",
    "transform_run",
    "attribute_classifier",
    "teacher",
)

#: Networks initialised from an earlier run, by stage: (run field, width field).
WIDTH_SOURCES: dict[str, tuple[tuple[str, str], ...]] = {
    "diat": (("init_transform", "transform_width"), ("init_discriminator", "discriminator_width")),
    "edit": (("init_transform", "transform_width"), ("init_discriminator", "discriminator_width")),
}

#: What a resumed run cannot change: the shapes of the networks in its checkpoint.
ARCHITECTURE = (
    "stage",
    "transform_width",
    "discriminator_width",
    "denoiser_width",
    "enhancer_width",
    "classifier_width",
    "editor",
    "detail_gate",
    "region",
)

#: Stages that learn one attribute (and so need --attribute).
ATTRIBUTE_STAGES = ("classify", "evaluator", "diat", "edit")


class CheckError(ValueError):
    """One or more problems, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s), nothing was started:\n{lines}")


@dataclass
class Checked:
    config: TrainConfig
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """What the checks changed or found worth saying (a width taken from an earlier run)."""


def check_config(
    config: TrainConfig, *, explicit: frozenset[str] | set[str] = frozenset(), resume: Path | None = None
) -> Checked:
    """The config as it will train, or CheckError listing every problem. `explicit`: the fields given on
    the command line (a width given there is never silently replaced)."""
    problems: list[str] = []
    checked = Checked(config)
    if resume is not None:
        _check_resume(Path(resume), config, explicit, problems, checked)
    _check_dataset(config, problems, checked)
    _check_runs(config, problems)
    if not problems:
        _adopt_widths(config, explicit, problems, checked)
    _check_needs(config, problems, checked)
    if problems:
        raise CheckError(problems)
    return checked


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# -- dataset and attribute ----------------------------------------------------------------------------------


def _check_dataset(config: TrainConfig, problems: list[str], checked: Checked) -> None:
    try:
        dataset = PreparedDataset.open(config.data)
        if config.dev_fraction:
            dataset = dataset.with_dev_split(config.dev_fraction)
    except DatasetError as exc:
        problems.append(str(exc))
        return
    attribute = config.attribute
    if attribute is None:
        if config.stage in ATTRIBUTE_STAGES:
            known = ", ".join(sorted(dataset.labels)) or "none"
            problems.append(f"stage '{config.stage}' needs --attribute (the dataset has: {known})")
        return
    if attribute not in dataset.labels:
        known = ", ".join(sorted(dataset.labels)) or "none"
        close = difflib.get_close_matches(attribute, list(dataset.labels), n=1)
        hint = f" — did you mean {close[0]!r}?" if close else ""
        problems.append(f"attribute {attribute!r} is not in {config.data} (has: {known}){hint}")
        return
    if config.stage in ("classify", "evaluator"):
        needed = {0: "without", 1: "with"}
    elif config.stage in ("diat", "edit"):
        target = config.target_value
        needed = {1 - target: "to edit (source)", target: "with the target value (real faces for D)"}
    else:
        return
    for value, what in needed.items():
        if len(dataset.indices("train", attribute, value)) == 0:
            problems.append(f"no training faces with {attribute} = {value} ({what}) in {config.data}")
        elif (
            config.stage in ("classify", "evaluator")
            and len(dataset.indices("heldout", attribute, value)) == 0
        ):
            checked.warnings.append(
                f"no held-out faces with {attribute} = {value}: the held-out accuracy cannot be measured"
            )


# -- earlier runs -----------------------------------------------------------------------------------------


def _check_runs(config: TrainConfig, problems: list[str]) -> None:
    accepted = RUN_FIELDS.get(config.stage, {})
    for name in ALL_RUN_FIELDS:
        value = getattr(config, name)
        if not value:
            continue
        if name in ("init_transform", "teacher") and config.stage == "edit" and is_model_folder(value):
            problem = _model_problem(Path(value), _flag(name))
        else:
            problem = run_problem(Path(value), _flag(name), accepted.get(name))
        if problem:
            problems.append(problem)
        elif name == "attribute_classifier" and config.attribute:
            trained = _config_of(Path(value)).get("attribute")
            if trained != config.attribute:
                problems.append(
                    f"--attribute-classifier {value} was trained for {trained!r}, this run edits "
                    f"{config.attribute!r}"
                )
    if config.identity_weights and not Path(config.identity_weights).is_file():
        problems.append(f"--identity-weights {config.identity_weights}: no such file")


def run_problem(run: Path, option: str, stages: tuple[str, ...] | None) -> str | None:
    """Why `run` cannot serve as `option` (None when it can): missing, not a run, wrong stage, no
    checkpoint. A missing folder gets the closest existing name as a hint."""
    if not (run / CONFIG_FILE).is_file():
        if run.is_dir():
            return f"{option} {run}: not a run folder (no {CONFIG_FILE})"
        siblings = [p.name for p in run.parent.iterdir() if p.is_dir()] if run.parent.is_dir() else []
        close = difflib.get_close_matches(run.name, siblings, n=1, cutoff=0.6)
        hint = f" — did you mean {run.parent / close[0]}?" if close else ""
        return f"{option} {run}: no such run folder{hint}"
    stage = _config_of(run).get("stage")
    if stages is not None and stage not in stages:
        kinds = " or ".join(stages)
        article = "an" if kinds[0] in "aeiou" else "a"
        return f"{option} {run} is a '{stage}' run; {option} takes {article} {kinds} run"
    if not (run / CHECKPOINT).is_file():
        return f"{option} {run} has no checkpoint yet (still starting, or it failed)"
    return None


def _model_problem(folder: Path, option: str) -> str | None:
    try:
        read_model_editor(folder)
    except ModelImportError as exc:
        return f"{option} {exc}"
    return None


def _config_of(run: Path) -> dict[str, Any]:
    """A run's config.json; for an installed model's folder, the settings its manifest records."""
    if is_model_folder(run):
        try:
            model = read_model_editor(run)
        except ModelImportError:
            return {}
        return model.run_settings()
    try:
        return json.loads((run / CONFIG_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _adopt_widths(
    config: TrainConfig, explicit: frozenset[str] | set[str], problems: list[str], checked: Checked
) -> None:
    changes: dict[str, int] = {}
    for run_field, width_field in WIDTH_SOURCES.get(config.stage, ()):
        run = getattr(config, run_field)
        if not run:
            continue
        width = _config_of(Path(run)).get(width_field)
        if width is None or int(width) == getattr(config, width_field):
            continue
        if width_field in explicit:
            given = f"{_flag(width_field)} {getattr(config, width_field)}"
            problems.append(
                f"{given} does not match {_flag(run_field)} {run} (width {width}): leave "
                f"{_flag(width_field)} out to take the run's width"
            )
        else:
            changes[width_field] = int(width)
            checked.notes.append(f"{width_field} = {width}, taken from {_flag(run_field)} {run}")
    if config.stage == "edit" and config.init_transform:
        earlier = _config_of(Path(config.init_transform))
        editor = earlier.get("editor", "residual")
        if editor != config.editor:
            problems.append(f"--editor {config.editor} does not match --init-transform (a {editor} editor)")
        if is_model_folder(config.init_transform):
            _adopt_model_settings(config, earlier, explicit, changes, checked)
    if changes:
        checked.config = replace(checked.config, **changes)


def _adopt_model_settings(
    config: TrainConfig,
    model: dict[str, Any],
    explicit: frozenset[str] | set[str],
    changes: dict[str, Any],
    checked: Checked,
) -> None:
    """A run continuing an installed model takes its editor's σ components (the file computes with them;
    without them the editor's output would change at step 0) unless the command line gives others, and is
    warned when it edits something else than the model did."""
    source = f"--init-transform {config.init_transform}"
    for name in ("delta_lowpass", "detail_gate"):
        value = float(model.get(name) or 0.0)
        if name not in explicit and value != getattr(config, name):
            changes[name] = value
            checked.notes.append(f"{name} = {value:g}, taken from {source}")
    edited = (model.get("attribute"), model.get("direction"), model.get("region"))
    wanted = (config.attribute, config.direction, config.region)
    if edited != wanted:
        was, now = (" ".join(str(v) for v in values if v) for values in (edited, wanted))
        checked.warnings.append(f"{source} was trained to {was}; this run trains {now}")


def _check_teacher(config: TrainConfig, problems: list[str]) -> None:
    """A teacher and its weight come together, and the teacher makes the same edit (its output is the
    target inside the region: a teacher of another edit would ask T to unlearn this one)."""
    if config.teacher_weight < 0:
        problems.append(f"--teacher-weight {config.teacher_weight}: 0 (off) or more")
    if config.teacher_weight > 0 and not config.teacher:
        problems.append("--teacher-weight needs --teacher (an edit run or an installed model's folder)")
    if config.teacher and config.teacher_weight == 0:
        problems.append("--teacher without --teacher-weight does nothing: give a weight (e.g. 30)")
    if config.teacher and (is_model_folder(config.teacher) or (Path(config.teacher) / CONFIG_FILE).is_file()):
        taught = _config_of(Path(config.teacher))
        edited = (taught.get("attribute"), taught.get("direction"), taught.get("region"))
        wanted = (config.attribute, config.direction, config.region)
        if edited != wanted:
            was, now = (" ".join(str(v) for v in values if v) for values in (edited, wanted))
            problems.append(f"--teacher {config.teacher} was trained to {was}; this run trains {now}")


def _check_discriminator_warmup(config: TrainConfig, problems: list[str]) -> None:
    """A warm-up trains D for the adversarial term: without that term, or for the whole run, it is wasted."""
    warmup = config.discriminator_warmup
    if warmup < 0:
        problems.append(f"--discriminator-warmup {warmup}: 0 (off) or more steps")
    elif warmup > 0 and config.adversarial_weight == 0:
        problems.append("--discriminator-warmup trains D, but --adversarial-weight 0 never asks it")
    elif warmup >= config.steps:
        problems.append(
            f"--discriminator-warmup {warmup} leaves no step for the editor (--steps {config.steps})"
        )


# -- what each stage needs -------------------------------------------------------------------------------


def _check_needs(config: TrainConfig, problems: list[str], checked: Checked) -> None:
    if config.stage == "denoise" and not config.reconstruction:
        problems.append("stage 'denoise' needs --reconstruction RUN (a finished 'perceptual' run)")
    if config.stage == "enhance-local":
        if not config.transform_run:
            problems.append("stage 'enhance-local' needs --transform-run RUN (a 'diat' run)")
        elif not config.region and not _config_of(Path(config.transform_run)).get("region"):
            problems.append("stage 'enhance-local' needs --region (mouth or eyes): its diat run has none")
    if config.stage == "diat":
        if not config.init_transform:
            checked.warnings.append(
                "stage 'diat' without --init-transform: T starts from random weights, not from the "
                "'reconstruct' run the paper pretrains it with — it returns faces only after far more steps"
            )
        if not config.init_discriminator:
            checked.warnings.append(
                "stage 'diat' without --init-discriminator: D starts untrained, not from a 'classify' run"
            )
        if not config.denoiser and config.perceptual_weight > 0:
            checked.warnings.append(
                "stage 'diat' without --denoiser: the perceptual regulariser ||f(T(x)) - T(x)||^2 is off "
                "(give a 'denoise' run, or --perceptual-weight 0 to say that this is meant)"
            )
    for name in ("pair_weight", "drawn_pair_weight"):
        if (
            getattr(config, name) > 0
            and config.stage == "edit"
            and (config.attribute != "Eyeglasses" or config.direction != "remove")
        ):
            flag = "--" + name.replace("_", "-")
            problems.append(f"{flag} (synthetic glasses pairs) is for removing Eyeglasses only")
    if config.stage == "edit":
        _check_teacher(config, problems)
        _check_discriminator_warmup(config, problems)
    if config.green_weight > 0 and config.region != "mouth":
        problems.append("--green-weight (a mouth is never greener than red) is for mouth edits only")
    if config.lip_colour_weight > 0 and config.region != "mouth":
        problems.append("--lip-colour-weight (the lips keep their own colour) is for mouth edits only")
    if config.upper_lip_weight > 0 and (config.region != "mouth" or config.target_value != 1):
        problems.append("--upper-lip-weight (an opened mouth keeps its upper lip) is for opening mouths only")
    if config.occluder_weight > 0 and (config.region != "mouth" or config.stage != "edit"):
        problems.append("--occluder-weight (a hand over the mouth is left alone) is for mouth edits only")
    if config.mouth_detail_weight > 0 and (config.region != "mouth" or config.stage != "edit"):
        problems.append("--mouth-detail-weight (a mouth as sharp as its photo) is for mouth edits only")
    if config.inner_detail_weight > 0 and config.region != "mouth":
        problems.append("--inner-detail-weight (the teeth a closed mouth hides) is for mouth edits only")
    if config.region_box_scale != 1.0 and (config.region_box_scale <= 0 or not config.region):
        problems.append(
            f"--region-box-scale {config.region_box_scale}: the region D's box of a local edit (--region), "
            "more than 0"
        )
    for name in ("delta_lowpass", "detail_gate"):  # the residual editor's σ components
        sigma = getattr(config, name)
        if sigma < 0:
            problems.append(f"{_flag(name)} {sigma}: a σ in pixels, 0 (none) or more")
        elif sigma > 0 and config.stage == "edit" and config.editor != "residual":
            problems.append(
                f"{_flag(name)} is a component of the residual editor: it needs --editor residual"
            )
    if config.region_margin is not None:
        if not config.region:
            problems.append("--region-margin is the margin around a local edit's region: it needs --region")
        elif not 0.0 <= config.region_margin <= MAX_REGION_MARGIN:
            problems.append(
                f"--region-margin {config.region_margin}: inter-ocular distances around the region, "
                f"0 to {MAX_REGION_MARGIN:g}"
            )


# -- resume ------------------------------------------------------------------------------------------------


def _check_resume(
    run: Path, config: TrainConfig, explicit: frozenset[str] | set[str], problems: list[str], checked: Checked
) -> None:
    try:
        check_unlocked(run)
    except RunLockedError as exc:
        problems.append(str(exc))
        return
    stored = {**TrainConfig.defaults(), **_config_of(run)}  # a setting newer than the run: its default
    for name in ARCHITECTURE:
        if name in explicit and stored.get(name) != getattr(config, name):
            problems.append(
                f"{_flag(name)} cannot change on --resume (the run's checkpoint has {stored.get(name)!r})"
            )
    if not (run / CHECKPOINT).is_file():
        checked.warnings.append(f"{run} has no checkpoint: --resume starts it again from step 0")
        return
    step = int(load_checkpoint(run)["step"])
    if config.steps < step:
        problems.append(
            f"{run} is already at step {step} (its checkpoint); --steps {config.steps} would go back: give "
            f"--steps above {step} to continue it, or leave --steps out"
        )
    elif config.steps == step:
        checked.notes.append(f"{run} is already at step {step}: nothing left to train")
    status = _status(run)
    if status.get("status") == "failed":
        checked.notes.append(f"{run} failed at step {status.get('step')}; resuming from its checkpoint")


def _status(run: Path) -> dict[str, Any]:
    try:
        return json.loads((run / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return {}
