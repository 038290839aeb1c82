"""`diat-studio-train custom`: the presets, the request, and every check made before any work starts.

`validate(request)` returns the resolved Plan or raises CheckError listing every problem at once: the
name, the region (with the valid ones), the direction and preset, both photo folders (present, distinct,
not nested, at least MIN_PHOTOS photos each), the workspace (made for the same photos and settings, and
not inside a photo folder), the install target (free, or installed from this workspace) and torch.
`--dry-run` runs exactly these checks and prints the plan.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from diat_studio.core.manifest import MAX_REGION_MARGIN
from trainer.checks import CheckError

#: Photos each folder needs at least (a few hundred per folder train a far better edit).
MIN_PHOTOS = 20
#: Faces that must be found and aligned in each folder (the rest are listed in data/prepare.json).
MIN_FACES = 15
#: The regions a custom edit can work on: a local edit of the mouth or the eyes, or the whole face.
REGIONS = ("mouth", "eyes", "face")
#: Of each folder's faces, this fraction is held out for the classifiers' accuracy and the evaluation.
HELDOUT_FRACTION = 0.2

_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Preset:
    """The work of one preset. Widths and crop size are shared by the user presets, so moving up from
    `quick` to `standard` continues the same runs to more steps instead of starting again."""

    name: str
    guide_steps: int
    evaluator_steps: int
    edit_steps: int
    cpu_minutes: int
    """Measured wall minutes of the whole command on the 2-core development CPU for 2 × 50 photos
    (docs/TRAINING.md, "Train your own attribute"), preparation and evaluation included."""
    crop_size: int = 128
    transform_width: int = 16
    discriminator_width: int = 32
    classifier_width: int = 16
    batch_size: int = 8
    classifier_batch: int = 32
    evaluation: dict[str, int] = field(
        default_factory=lambda: {
            "limit": 200,
            "two_sample_steps": 200,
            "grey_faces": 16,
            "already_target": 100,
            "grid_faces": 16,
        }
    )
    hidden: bool = False
    """For the tests only: not offered in --help or the window."""


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset("quick", guide_steps=200, evaluator_steps=200, edit_steps=400, cpu_minutes=10),
        Preset("standard", guide_steps=500, evaluator_steps=400, edit_steps=1500, cpu_minutes=32),
        Preset("best", guide_steps=1000, evaluator_steps=800, edit_steps=4000, cpu_minutes=80),
        Preset(
            "tiny",
            guide_steps=3,
            evaluator_steps=3,
            edit_steps=3,
            cpu_minutes=1,
            crop_size=64,
            transform_width=4,
            discriminator_width=4,
            classifier_width=4,
            batch_size=4,
            classifier_batch=8,
            evaluation={
                "limit": 8,
                "two_sample_steps": 4,
                "grey_faces": 2,
                "already_target": 2,
                "grid_faces": 2,
            },
            hidden=True,
        ),
    )
}

USER_PRESETS = tuple(name for name, preset in PRESETS.items() if not preset.hidden)

#: Measured on the 2-core development CPU at the user presets' sizes (docs/TRAINING.md, "Train your own
#: attribute"): seconds per photo aligned and per training step, and seconds of export and evaluation.
#: They give the steps' shares of the progress bar and the estimate `--dry-run` prints.
SECONDS = {
    "photo": 0.1,  # LFW's 250 px photos: 0.04; a 12-megapixel phone photo takes far longer to decode
    "guide": 0.18,
    "evaluator": 0.8,
    "edit-local": 0.95,
    "edit-global": 0.95,
    "export": 2.0,
    "evaluate": 90.0,
    "install": 1.0,
}


@dataclass(frozen=True)
class CustomRequest:
    """What the command line (or the window) asked for."""

    with_dir: Path
    without_dir: Path
    name: str
    region: str = "face"
    region_margin: float | None = None
    """Local edits: the margin around the region's landmark hull (None: the region's default)."""
    direction: str = "add"
    """add: the edit turns faces like WITHOUT_DIR's into faces like WITH_DIR's; remove: the reverse."""
    attribute: str | None = None
    display_name: str | None = None
    preset: str = "quick"
    install: bool = False
    force: bool = False
    workspace: Path | None = None
    """Default: custom/NAME in the current folder."""
    models_dir: Path | None = None
    """Where --install puts the model; default: the per-user models folder."""
    device: str = "auto"
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 8))
    threads: int = field(default_factory=lambda: default_threads())
    """Torch threads of the training and evaluation (default: half the cores, at least one)."""
    steps_scale: float = 1.0
    """Tests only: every training step count is multiplied by this."""


@dataclass(frozen=True)
class Plan:
    """A validated request with everything resolved."""

    request: CustomRequest
    preset: Preset
    workspace: Path
    attribute: str
    display_name: str
    photos: dict[str, int]
    install_to: Path | None
    replace_workspace: bool = False
    """The workspace holds work for other photos or settings, and --force said to start again."""
    warnings: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.request.name

    @property
    def region(self) -> str | None:
        """The training region: None for a global edit of the whole face."""
        return None if self.request.region == "face" else self.request.region

    @property
    def data(self) -> Path:
        return self.workspace / "data"

    @property
    def runs(self) -> Path:
        return self.workspace / "runs"

    @property
    def model(self) -> Path:
        return self.workspace / "model" / self.name

    @property
    def log(self) -> Path:
        return self.workspace / "custom.log"

    def steps(self, which: str) -> int:
        base = {"guide": self.preset.guide_steps, "evaluator": self.preset.evaluator_steps}.get(
            which, self.preset.edit_steps
        )
        return max(1, round(base * self.request.steps_scale))

    def expected_seconds(self) -> dict[str, float]:
        """Each step's expected wall time on the development CPU (SECONDS), for these photos."""
        edit = "edit-local" if self.region else "edit-global"
        seconds = {
            "prepare": SECONDS["photo"] * sum(self.photos.values()),
            "guide": SECONDS["guide"] * self.steps("guide"),
            "evaluator": SECONDS["evaluator"] * self.steps("evaluator"),
            "edit": SECONDS[edit] * self.steps("edit"),
            "export": SECONDS["export"],
            "evaluate": SECONDS["evaluate"],
        }
        if self.install_to is not None:
            seconds["install"] = SECONDS["install"]
        return seconds

    def identity(self) -> dict[str, Any]:
        """What the workspace's work depends on: a re-run with other values cannot reuse it."""
        preset = self.preset
        return {
            "with_dir": str(self.request.with_dir.resolve()),
            "without_dir": str(self.request.without_dir.resolve()),
            "photos": self.photos,
            "attribute": self.attribute,
            "direction": self.request.direction,
            "region": self.request.region,
            # only when given: workspaces made before the option existed stay reusable
            **(
                {"region_margin": self.request.region_margin}
                if self.request.region_margin is not None
                else {}
            ),
            "crop_size": preset.crop_size,
            "widths": [preset.transform_width, preset.discriminator_width, preset.classifier_width],
        }

    def to_dict(self) -> dict[str, Any]:
        request = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self.request).items()}
        return {"identity": self.identity(), "request": request, "preset": asdict(self.preset)}


def default_threads() -> int:
    """Half the cores: on the 2-core development CPU, shared with the app or another job, two torch
    threads made a training step 3-4 times slower than one (they wait on each other), docs/TRAINING.md."""
    return max(1, (os.cpu_count() or 2) // 2)


def plan_file(workspace: Path) -> Path:
    return workspace / "plan.json"


def default_display_name(name: str) -> str:
    """ "add-beard" → "Add beard"."""
    words = re.sub(r"[-_]+", " ", name).strip()
    return words[:1].upper() + words[1:]


def default_attribute(name: str) -> str:
    """The attribute's column name from the edit's name: "add-beard" → "beard"."""
    stripped = re.sub(r"^(add|remove)[-_]", "", name)
    return stripped or name


def validate(request: CustomRequest) -> Plan:
    """The plan, or CheckError with every problem found (nothing is written either way)."""
    from trainer.prepare import photo_files

    problems: list[str] = []
    warnings: list[str] = []
    if not _NAME.match(request.name):
        problems.append(
            f"--name {request.name!r}: use 1-64 lower-case letters, digits, '-' or '_' (e.g. add-beard); "
            "it names the model in the app and in `diat-studio batch --edit NAME`"
        )
    if request.region not in REGIONS:
        problems.append(
            f"--region {request.region!r} is not a region: choose {', '.join(REGIONS)} (mouth and eyes are "
            "local edits; face edits the whole face)"
        )
    if request.region_margin is not None:
        if request.region == "face":
            problems.append("--region-margin is for a local edit (--region mouth or eyes)")
        elif not 0.0 <= request.region_margin <= MAX_REGION_MARGIN:
            problems.append(
                f"--region-margin {request.region_margin}: eye distances, 0 to {MAX_REGION_MARGIN:g}"
            )
    if request.direction not in ("add", "remove"):
        problems.append(f"--direction {request.direction!r}: choose add or remove")
    preset = PRESETS.get(request.preset)
    if preset is None:
        problems.append(f"--preset {request.preset!r}: choose {', '.join(USER_PRESETS)}")
    if request.threads < 1 or request.workers < 1:
        problems.append("--threads and --workers must be at least 1")
    if not 0 < request.steps_scale <= 1000:
        problems.append(f"--steps-scale must be in (0, 1000], got {request.steps_scale}")

    photos: dict[str, int] = {}
    folders = {"with": request.with_dir, "without": request.without_dir}
    for key, folder in folders.items():
        label = f"WITH_DIR {folder}" if key == "with" else f"WITHOUT_DIR {folder}"
        if not folder.is_dir():
            problems.append(f"{label}: {'not a folder' if folder.exists() else 'no such folder'}")
            continue
        photos[key] = len(photo_files(folder))
        if photos[key] < MIN_PHOTOS:
            problems.append(
                f"{label} has {photos[key]} photo(s): at least {MIN_PHOTOS} per folder are needed "
                "(JPEG, PNG, WebP, TIFF or BMP; a few hundred train a far better edit)"
            )
    if len(photos) == 2:
        a, b = request.with_dir.resolve(), request.without_dir.resolve()
        if a == b:
            problems.append("WITH_DIR and WITHOUT_DIR are the same folder")
        elif a in b.parents or b in a.parents:
            problems.append("one photo folder is inside the other: their photos would be counted twice")

    workspace = Path(request.workspace or Path("custom") / request.name)
    for folder in folders.values():
        if folder.is_dir() and folder.resolve() in [workspace.resolve(), *workspace.resolve().parents]:
            problems.append(f"the workspace {workspace} is inside the photo folder {folder}: choose another")
    if workspace.exists() and not workspace.is_dir():
        problems.append(f"the workspace {workspace} exists and is not a folder")
    if importlib.util.find_spec("torch") is None:
        problems.append("the trainer needs torch: pip install -e '.[train]'")
    if problems or preset is None:
        raise CheckError(problems)

    attribute = request.attribute or default_attribute(request.name)
    plan = Plan(
        request,
        preset,
        workspace,
        attribute,
        request.display_name or default_display_name(request.name),
        photos,
        _install_target(request),
    )
    replace_workspace = _check_workspace(plan, problems)
    _check_install(plan, problems, warnings)
    if request.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            problems.append("--device cuda: torch sees no CUDA device")
    if problems:
        raise CheckError(problems)
    return replace(plan, replace_workspace=replace_workspace, warnings=tuple(warnings))


def _install_target(request: CustomRequest) -> Path | None:
    if not request.install:
        return None
    from diat_studio.core.paths import user_models_dir

    return Path(request.models_dir or user_models_dir()) / request.name


def _check_workspace(plan: Plan, problems: list[str]) -> bool:
    """Whether the workspace must be emptied first (it was made for other photos or settings, --force)."""
    path = plan_file(plan.workspace)
    if not path.is_file():
        if plan.workspace.is_dir() and any(plan.workspace.iterdir()):
            if plan.request.force:
                return True
            problems.append(
                f"the workspace {plan.workspace} is not empty and was not made by `custom`: choose another "
                "--workspace or --name (or --force to empty it)"
            )
        return False
    try:
        earlier = json.loads(path.read_text()).get("identity", {})
    except ValueError:
        earlier = {}
    differences = [key for key, value in plan.identity().items() if earlier.get(key) != value]
    if not differences:
        return False
    if plan.request.force:
        return True
    shown = ", ".join(differences)
    problems.append(
        f"the workspace {plan.workspace} was made for other {shown} (see its plan.json): use --force to "
        "start again there, or another --name"
    )
    return False


def _check_install(plan: Plan, problems: list[str], warnings: list[str]) -> None:
    target = plan.install_to
    if target is None:
        return
    from diat_studio.core.paths import bundled_models_dir

    if (bundled_models_dir() / plan.name).is_dir():
        warnings.append(f"a bundled model is also called {plan.name!r}: yours replaces it in the app")
    if not target.exists() or plan.request.force:
        return
    try:
        training = json.loads((target / "manifest.json").read_text()).get("training", {})
        source = Path(str(training.get("dataset", {}).get("folder", ""))).resolve()
    except (OSError, ValueError, AttributeError):
        source = None
    if source != plan.data.resolve():
        problems.append(
            f"a model named {plan.name!r} is already installed ({target}) and was not trained in "
            f"{plan.workspace}: choose another --name, or --force to replace it"
        )
