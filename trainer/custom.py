"""`diat-studio-train custom`: two folders of photos → an evaluated model, installed for the app.

The steps, each skipped when it is finished and resumed when it was cut short:

    prepare    align both folders (custom layout, held-out faces drawn per folder)    data/
    guide      the guide classifier (`classify`: D's architecture) that steers T      runs/guide/
    evaluator  the independent evaluator classifier (`evaluator`), never seen by T    runs/evaluator/
    edit       the `edit` stage with the recipe of the bundled edits                  runs/edit/
    export     ONNX + manifest                                                        model/NAME/
    evaluate   held-out faces, `--quality-bar`                                        model/NAME/evaluation*
    install    (with --install) into the per-user models folder                       ~/.local/share/…

Everything lives in one workspace folder (default custom/NAME): plan.json (what it was made for),
state.json (which model was exported, evaluated, installed), custom.log (every message and progress line,
with rate and ETA). The run folders have fixed names, so a re-run finds them; a training run with a
checkpoint continues from it (to more steps when a larger preset asks for them). Ctrl-C and SIGTERM stop
at the next training step (or cut an export / evaluation short, which leave nothing half-written) and exit
130 / 143; the same command then continues.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from diat_studio.core.atomic_files import atomic_write_bytes
from diat_studio.core.errors import DiatError
from trainer.bundled_edits import EditSpec
from trainer.custom_plan import HELDOUT_FRACTION, MIN_FACES, Plan, plan_file
from trainer.custom_report import Reporter
from trainer.stopping import StopRequests

#: The steps in order: (key, title).
STEPS: tuple[tuple[str, str], ...] = (
    ("prepare", "prepare: find and align the faces of both folders"),
    ("guide", "guide classifier: the attribute loss that steers the edit"),
    ("evaluator", "evaluator: an independent classifier that judges the edit"),
    ("edit", "edit: train the editor (the recipe of the bundled edits)"),
    ("export", "export: ONNX files and manifest"),
    ("evaluate", "evaluate: held-out faces against the quality bar"),
    ("install", "install: into the per-user models folder"),
)

STATE_FILE = "state.json"
CHECKPOINT_EVERY = 50
EMA_DECAY = 0.995
"""As the CPU schedule of the bundled edits (scripts/train_bundled.sh): a few hundred steps need a
shorter average than the GPU fleet's 0.999."""


class CustomError(DiatError):
    """The photos cannot train an edit (too few faces found); nothing a re-run would change."""


class Stopped(Exception):
    """Stopped on request; the work so far is kept and the same command continues it."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(f"stopped (exit {exit_code})")
        self.exit_code = exit_code


@dataclass(frozen=True)
class Outcome:
    model: Path
    installed: Path | None
    metrics: dict[str, Any]
    experimental: bool
    warnings: tuple[str, ...]


def steps_of(plan: Plan) -> list[tuple[str, str]]:
    return [step for step in STEPS if step[0] != "install" or plan.install_to is not None]


def run_custom(plan: Plan, reporter: Reporter, stop: StopRequests) -> Outcome:
    """Every step of the plan; raises Stopped when asked to stop, CustomError when the photos cannot do."""
    if plan.replace_workspace:
        shutil.rmtree(plan.workspace)
    plan.workspace.mkdir(parents=True, exist_ok=True)
    _write_json(plan_file(plan.workspace), plan.to_dict())
    import torch

    torch.set_num_threads(plan.request.threads)  # the evaluation too, not only the training runs
    work = _Work(plan, reporter, stop)
    steps = steps_of(plan)
    try:
        for index, (key, title) in enumerate(steps, 1):
            reporter.step(index, len(steps), key, title)
            getattr(work, key.replace("-", "_"))()
            if stop.requested:
                raise Stopped(stop.exit_code)
    except KeyboardInterrupt:
        raise Stopped(stop.exit_code) from None
    reporter.complete()
    manifest = json.loads((plan.model / "manifest.json").read_text())
    return Outcome(
        plan.model,
        plan.install_to,
        manifest.get("metrics", {}),
        bool(manifest.get("experimental")),
        tuple(work.warnings),
    )


class _Work:
    def __init__(self, plan: Plan, reporter: Reporter, stop: StopRequests) -> None:
        self.plan, self.reporter, self.stop = plan, reporter, stop
        self.warnings: list[str] = []

    # -- state --------------------------------------------------------------------------------------------

    @property
    def state(self) -> dict[str, Any]:
        path = self.plan.workspace / STATE_FILE
        return json.loads(path.read_text()) if path.is_file() else {}

    def set_state(self, **values: Any) -> None:
        state = {k: v for k, v in {**self.state, **values}.items() if v is not None}
        _write_json(self.plan.workspace / STATE_FILE, state)

    def edit_step(self) -> int:
        from trainer.runs import load_checkpoint

        return int(load_checkpoint(self.plan.runs / "edit")["step"])

    # -- the steps ----------------------------------------------------------------------------------------

    def prepare(self) -> None:
        from trainer.prepare import PrepareConfig, PrepareInterrupted, prepare_dataset

        plan = self.plan
        if not (plan.data / "prepare.json").is_file():
            config = PrepareConfig(
                source=str(plan.workspace.resolve()),
                out=str(plan.data),
                layout="custom",
                size=plan.preset.crop_size,
                heldout_fraction=HELDOUT_FRACTION,
                attribute=plan.attribute,
                workers=plan.request.workers,
                with_folder=str(plan.request.with_dir.resolve()),
                without_folder=str(plan.request.without_dir.resolve()),
                stratified=True,
            )
            first: list[int] = []

            def progress(done: int, total: int) -> None:
                if not first:
                    first.append(done if done > 1 else 0)
                self.reporter.progress(done, total, "photos", start=first[0])

            try:
                prepare_dataset(config, progress, self.stop)
            except PrepareInterrupted:
                raise Stopped(self.stop.exit_code) from None
        else:
            self.reporter.say("  done earlier")
        self._check_faces()

    def _check_faces(self) -> None:
        from trainer.data import PreparedDataset

        plan = self.plan
        dataset = PreparedDataset.open(plan.data)
        info = dataset.info
        self.reporter.say(
            f"  {info['aligned']} of {info['photos']} photos aligned ({info['not_aligned']} without a usable "
            f"face, listed in {plan.data / 'prepare.json'})"
        )
        for value, folder in ((1, plan.request.with_dir), (0, plan.request.without_dir)):
            found = len(dataset.indices("all", plan.attribute, value))
            if found < MIN_FACES:
                raise CustomError(
                    f"only {found} faces could be found and aligned in {folder}: at least {MIN_FACES} are "
                    f"needed (the photos without a usable face are listed in {plan.data / 'prepare.json'})"
                )

    def guide(self) -> None:
        self._train("guide", self._classifier_config("classify", "guide"))

    def evaluator(self) -> None:
        self._train("evaluator", self._classifier_config("evaluator", "evaluator"))
        from trainer.evaluate import EVALUATOR_MIN_ACCURACY, classifier_accuracy_of

        accuracy = classifier_accuracy_of(self.plan.runs / "evaluator")
        if accuracy is not None:
            self.reporter.say(f"  held-out balanced accuracy {100 * accuracy:.1f}% (50% = chance)")
        if accuracy is None or accuracy < EVALUATOR_MIN_ACCURACY:
            self.reporter.say(
                "  WARNING: the evaluator can hardly tell the attribute apart (held-out balanced accuracy "
                f"below {100 * EVALUATOR_MIN_ACCURACY:.0f}%): the success rate it judges will mean little — "
                "more photos or a larger preset help"
            )

    def edit(self) -> None:
        plan, preset = self.plan, self.plan.preset
        fields = EditSpec(plan.name, plan.attribute, plan.request.direction, plan.region).config_fields()
        steps = plan.steps("edit")
        fields.update(
            dev_fraction=0.0,  # a user's few hundred faces are too few to set a developers' split aside
            transform_width=preset.transform_width,
            discriminator_width=preset.discriminator_width,
            batch_size=preset.batch_size,
            ema_decay=EMA_DECAY,
            attribute_classifier=str((plan.runs / "guide").resolve()),
            steps=steps,
            sample_every=max(steps // 4, 1),
        )
        if plan.request.region_margin is not None:
            fields["region_margin"] = plan.request.region_margin
        self._train("edit", self._config(**fields))

    def export(self) -> None:
        from trainer.export import export_model

        step = self.edit_step()
        if self.state.get("exported") == step and (self.plan.model / "manifest.json").is_file():
            self.reporter.say("  done earlier")
            return
        with self.stop.interrupting():
            export_model(
                self.plan.runs / "edit",
                self.plan.model,
                name=self.plan.name,
                display_name=self.plan.display_name,
            )
        self.set_state(exported=step, evaluated=None, installed=None)
        self.reporter.say(f"  {self.plan.model}")

    def evaluate(self) -> None:
        from trainer.evaluate import EvaluationSizes, evaluate_model

        step = self.edit_step()
        if self.state.get("evaluated") == step:
            self.reporter.say("  done earlier")
            return
        sizes = EvaluationSizes(**self.plan.preset.evaluation)
        with self.stop.interrupting():
            report = evaluate_model(
                self.plan.model, self.plan.data, self.plan.runs / "evaluator", quality_bar=True, sizes=sizes
            )
        for warning in report.get("warnings", []):
            if warning not in self.warnings:
                self.warnings.append(warning)
            self.reporter.say(f"  WARNING: {warning}")
        self.set_state(evaluated=step)

    def install(self) -> None:
        from trainer.export import install_model

        target = self.plan.install_to
        assert target is not None
        step = self.edit_step()
        if self.state.get("installed") == step and (target / "manifest.json").is_file():
            self.reporter.say(f"  done earlier: {target}")
            return
        with self.stop.interrupting():
            install_model(self.plan.model, replace=True, models_dir=target.parent, name=target.name)
        self.set_state(installed=step)
        self.reporter.say(f"  {target}")

    # -- training runs ------------------------------------------------------------------------------------

    def _config(self, **fields: Any) -> Any:
        from trainer.config import TrainConfig

        plan = self.plan
        base: dict[str, Any] = {
            "data": str(plan.data.resolve()),
            "runs_dir": str(plan.runs),
            "checkpoint_every": CHECKPOINT_EVERY,
            "log_every": 10,
            "device": plan.request.device,
            "threads": plan.request.threads,
        }
        return TrainConfig(**{**base, **fields})

    def _classifier_config(self, stage: str, key: str) -> Any:
        plan, preset = self.plan, self.plan.preset
        steps = plan.steps(key)
        width = "discriminator_width" if stage == "classify" else "classifier_width"
        return self._config(
            stage=stage,
            name=key,
            attribute=plan.attribute,
            direction="add",
            steps=steps,
            batch_size=preset.classifier_batch,
            lr=3e-4 if stage == "evaluator" else 1e-4,  # as `classifier` and `classify` train them
            sample_every=max(steps // 4, 1),
            **{width: preset.classifier_width},
        )

    def _train(self, key: str, config: Any) -> None:
        """Train run `key` to `config.steps`: skipped when it is there, resumed from its checkpoint."""
        from trainer.checks import check_config
        from trainer.config import TrainConfig
        from trainer.runs import CHECKPOINT, CONFIG_FILE, load_checkpoint
        from trainer.training_loop import training_loop

        run = self.plan.runs / key
        resume = (run / CHECKPOINT).is_file()
        if resume:
            step = int(load_checkpoint(run)["step"])
            if step >= config.steps:
                self.reporter.say(f"  done earlier: {step} steps")
                return
            stored = TrainConfig.load(run / CONFIG_FILE)
            config = replace(stored, steps=config.steps, threads=config.threads, device=config.device)
            self.reporter.say(f"  continuing from step {step} of {config.steps}")
        elif run.exists():
            shutil.rmtree(run)  # started, but stopped before its first checkpoint: nothing to keep
        config = check_config(config, resume=run if resume else None).config
        run.mkdir(parents=True, exist_ok=True)
        (run / CONFIG_FILE).write_text(config.to_json())
        first: list[int] = []

        def progress(step: int, total: int, losses: dict[str, float]) -> None:
            if not first:
                first.append(step - 1)
            text = " ".join(f"{k}={v:.3g}" for k, v in list(losses.items())[:3])
            self.reporter.progress(step, total, "steps", start=first[0], text=text)

        try:
            result = training_loop(config, run, resume=resume, progress=progress, should_abort=self.stop)
        except BaseException:
            if not resume and not (run / CHECKPOINT).is_file():
                shutil.rmtree(run, ignore_errors=True)
            raise
        if result["status"] == "aborted":
            raise Stopped(self.stop.exit_code)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=2) + "\n").encode())
