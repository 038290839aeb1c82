"""Typed training configuration, written as JSON into every run folder."""

from __future__ import annotations

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

VARIANTS = ("diat", "diat-a")
DIRECTIONS = ("add", "remove")
GAN_LOSSES = ("lsgan", "bce", "hinge")
EDITORS = ("residual", "plain")
#: The regions of a local edit; a global edit (the whole face) has no region.
LOCAL_REGIONS = ("mouth", "eyes")


@dataclass
class TrainConfig:
    """Everything a training stage needs. Unused fields are simply ignored by a stage."""

    stage: str
    data: str
    """A folder made by `diat-studio-train prepare`."""
    runs_dir: str = "runs"
    name: str = ""

    # what to learn
    attribute: str | None = None
    direction: str = "add"
    variant: str = "diat-a"
    region: str | None = None
    """Local attributes: the edited region (mouth, eyes). None: a global attribute."""

    dev_fraction: float = 0.0
    """Training faces set aside as the developers' split (never trained on; `evaluate --split dev`)."""

    # schedule
    steps: int = 1000
    batch_size: int = 16
    lr: float = 1e-4
    lr_discriminator: float | None = None
    """Default: `lr` for DIAT, 1e-5 for DIAT-A (the paper's setting)."""

    # widths
    transform_width: int = 32
    discriminator_width: int = 32
    denoiser_width: int = 32
    enhancer_width: int = 32
    classifier_width: int = 32

    # losses
    gan_loss: str = "lsgan"
    adversarial_weight: float = 1.0
    identity_weight: float = 10.0
    embedding_weight: float = 10.0
    """DIAT: weight of the 128-D dlib descriptor term (on top of the stage features)."""
    perceptual_weight: float = 1.0
    """Weight of ||f(T(x)) − T(x)||² (needs `denoiser`)."""
    smoothness_weight: float = 0.0
    reconstruction_weight: float = 0.0
    """Optional L1 pull of T(x) towards x (0 = the paper's objective)."""
    feature_weight: float = 1.0
    """Local enhancer: feature loss against T(x) inside the mask."""
    blur_sigma: tuple[float, float] = (0.8, 2.5)
    """Global enhancer: Gaussian blur σ range (pixels at the crop size)."""
    mask_feather: float = 0.15
    region_margin: float | None = None
    """Local edits: the margin (× inter-ocular distance) around the region's landmark hull; None = the
    region's default (diat_studio.core.regions.REGION_MARGIN). Recorded in the exported manifest, so the
    app pastes through the same mask."""

    # the `edit` stage's recipe components (trainer/edit_stage.py); 0 / empty switches one off
    editor: str = "residual"
    """"residual" (x + Δ, starts at the identity) or "plain" (the paper's T, for the ablation)."""
    delta_lowpass: float = 0.0
    """σ in pixels of the crop of a fixed Gaussian low-pass on the residual editor's Δ (part of the exported
    network; trainer.networks.DeltaLowPass); 0 = none. Takes away the pixel-scale pattern that the
    two-sample test found in the edits (docs/ABLATION.md)."""
    detail_gate: float = 0.0
    """σ in pixels of the crop of the photo's fine detail that a residual editor may take away where its
    gate opens (trainer.networks.DetailGate, part of the exported network; adds weights, so it is set when
    a run starts or is initialised from another, not on resume); 0 = none."""
    edit_weight: float = 0.05
    """|Δ| + total variation of Δ (the residual editor's edit)."""
    colour_weight: float = 1.0
    """Low-frequency chroma of Δ (against face-wide tints)."""
    edge_weight: float = 0.0
    """Local edits: |Δ| where the region's soft mask falls off (trainer.losses.mask_edge_penalty); 0 = off."""
    outside_weight: float = 0.0
    """Local edits: |Δ| of the raw edit outside the region (trainer.losses.outside_mask_penalty); 0 = off."""
    inner_detail_weight: float = 0.0
    """Mouth edits: the edited face's detail finer than 1.5 px between the source's inner lips
    (trainer.losses.hidden_detail_penalty): closing a mouth must hide the teeth; 0 = off."""
    ema_decay: float = 0.999
    """Exponential moving average of T's weights (the exported T); 0 = export the raw weights."""
    r1_weight: float = 1.0
    r1_every: int = 16
    """Lazy R1: the penalty is computed every N steps and scaled by N."""
    augment: str = ""
    """DiffAugment policies (colour, translation, cutout) for D's inputs and the guide classifier's,
    comma-separated; empty = none. Off by default: at 200 steps it did not help (docs/ABLATION.md)."""
    region_adversarial_weight: float = 1.0
    """Local edits: a second D judges the region (mouth, eye band) at the crop's resolution."""
    region_box_scale: float = 1.0
    """Local edits: the region D's box (trainer.edit_stage.REGION_BOXES) scaled by this, at the same
    resolution. At 1 the mouth box ends where the mouth mask does, so the region D never sees the edit's
    edge (docs/ABLATION.md, "Hiding the teeth"); 1.6 holds the whole mask and some skin around it."""
    attribute_classifier: str | None = None
    """A `classify` run (D's architecture, frozen) whose attribute loss guides T. Never the evaluator."""
    attribute_weight: float = 1.0
    pair_weight: float = 0.0
    """Remove eyeglasses: L1 weight of the synthetic pairs (glasses drawn onto glasses-free faces). With
    every weight on the real source faces at 0 (trainer.edit_stage.SOURCE_TERMS), no guide and no teacher,
    a run trains on the pairs alone and skips T's pass over the real faces (a warm start)."""
    drawn_pair_weight: float = 0.0
    """Remove eyeglasses: L1 weight of the synthetic pairs over the drawn pixels alone
    (trainer.losses.drawn_pixels_penalty: a rim left in place costs its whole difference); 0 = off."""
    keep_weight: float = 0.0
    """Faces that already have the target attribute go through T too and their Δ is penalised (L1): an
    edit should leave them as they are (trainer.losses.unchanged_penalty). From the first step it stops a
    local edit from forming (docs/ABLATION.md): use it to continue a run whose edit already works."""

    colour_detail_weight: float = 0.0
    """The chroma of Δ's detail finer than 1 px (trainer.losses.colour_detail), in the region for a local
    edit: against green and magenta specks; 0 = off."""
    teacher_weight: float = 0.0
    """Edits: |T(x) − teacher(x)| weighted by the region's mask (trainer.losses.teacher_penalty): keeps the
    edit of `teacher` while a new term changes something else; 0 = off."""
    green_weight: float = 0.0
    """Mouth edits: the edited mouth's pixels greener than red, beyond the source's own
    (trainer.losses.green_penalty: real mouths never are); 0 = off."""
    lip_colour_weight: float = 0.0
    """Mouth edits, the lips' own colour (CIE a*, 8 units of slack). Closing: where the teeth were, as red as
    the source's lips (trainer.losses.lip_colour_penalty: grey and olive closed mouths); opening: the
    source's lip redness kept rank by rank in the region (trainer.losses.opened_lips_penalty: pale
    lipstick); 0 = off."""
    upper_lip_weight: float = 0.0
    """Opening a mouth: the mean CIE Lab colour of the upper lip's outer half kept (3 units of slack per
    channel; trainer.losses.upper_lip_penalty: the greyish upper lip of opened mouths); 0 = off."""
    occluder_weight: float = 0.0
    """Mouth edits: a hand or an object drawn over the mouth of a second, half-size batch, T's mean |Δ| on
    it (trainer.occluders; trainer.edit_stage.EditStage._occluder_loss: the mouth open mouth drew through
    fingers); 0 = off."""
    mouth_detail_weight: float = 0.0
    """Mouth edits: the edited mouth at least trainer.losses.MOUTH_DETAIL_RATIO times as finely detailed as
    the skin around it in the photo (trainer.losses.soft_mouth_penalty: the soft patch close mouth left on
    sharp photos); 0 = off."""
    discriminator_warmup: int = 0
    """Edits: the run's first N steps train only D (and the region D) against the editor as it starts — T
    and its average stay as they are — so that an editor continued with a fresh D meets one that already
    knows its tells (trainer.edit_stage.EditStage.step); 0 = off."""

    # networks from earlier runs (run folders)
    init_transform: str | None = None
    init_discriminator: str | None = None
    teacher: str | None = None
    """Edits: the frozen editor `teacher_weight` holds T to (an edit run or an installed model's folder)."""
    denoiser: str | None = None
    reconstruction: str | None = None
    """The `perceptual` run (g) that the `denoise` stage trains f on."""
    transform_run: str | None = None
    """The `diat` run whose T feeds the local enhancer."""
    identity_weights: str | None = None
    """The identity network in a file written by `pack` (read without dlib); default: dlib's model file."""

    # bookkeeping
    log_every: int = 10
    sample_every: int = 200
    checkpoint_every: int = 200
    samples: int = 8
    seed: int = 0
    device: str = "auto"
    amp: bool = True
    """bf16 autocast where it pays: on a CUDA device that supports it, and (edit runs) on a CPU with bf16
    instructions (trainer.cpu_features: without them it is ~10× slower than fp32, and fp32 is used)."""
    threads: int = 0

    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.blur_sigma = tuple(self.blur_sigma)  # type: ignore[assignment]
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {self.variant!r}")
        if self.region is not None and self.region not in LOCAL_REGIONS:
            raise ValueError(
                f"region must be one of {', '.join(LOCAL_REGIONS)} (a local edit), or left out for a global "
                f"edit of the whole face; got {self.region!r}"
            )
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be add or remove, got {self.direction!r}")
        if self.gan_loss not in GAN_LOSSES:
            raise ValueError(f"gan_loss must be one of {', '.join(GAN_LOSSES)}")
        from trainer.augment import AUGMENTATIONS

        unknown = [p for p in self.augment_policies if p not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r} (known: {', '.join(AUGMENTATIONS)})")
        if self.editor not in EDITORS:
            raise ValueError(f"editor must be one of {', '.join(EDITORS)}, got {self.editor!r}")
        if self.r1_every < 1:
            raise ValueError("r1_every must be at least 1")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")

    @property
    def augment_policies(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.augment.split(",") if p.strip())

    @property
    def discriminator_lr(self) -> float:
        if self.lr_discriminator is not None:
            return self.lr_discriminator
        return 1e-5 if self.variant == "diat-a" else self.lr

    @property
    def target_value(self) -> int:
        """The attribute value the transform should produce."""
        return 1 if self.direction == "add" else 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["blur_sigma"] = list(self.blur_sigma)
        return data

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """{field: default} for every field that has one, in to_dict's form (what an older run that lacks
        the field trained with)."""
        values: dict[str, Any] = {}
        for item in fields(cls):
            if item.default is not MISSING:
                values[item.name] = item.default
            elif item.default_factory is not MISSING:
                values[item.name] = item.default_factory()
        if isinstance(values.get("blur_sigma"), tuple):
            values["blur_sigma"] = list(values["blur_sigma"])
        return values

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config fields: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def load(cls, path: Path) -> TrainConfig:
        return cls.from_dict(json.loads(Path(path).read_text()))


def editor_options(config: dict[str, Any]) -> dict[str, float]:
    """A residual editor's constructor options from a run's config (the low-pass σ and the detail gate's σ;
    absent from older runs: 0, none)."""
    return {
        "delta_lowpass": float(config.get("delta_lowpass") or 0.0),
        "detail_gate": float(config.get("detail_gate") or 0.0),
    }
