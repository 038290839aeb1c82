"""The edits the app bundles, as the `edit` recipe trains them: attribute, direction, region and the few
weights that differ per edit. One table for `pack` (which classifiers travel), `fleet` (what it trains)
and `fleet-import` (where the results go); scripts/train_bundled.sh is the same schedule for the CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: The recipe settings every bundled edit shares (on top of TrainConfig's defaults).
RECIPE: dict[str, Any] = {
    "stage": "edit",
    "dev_fraction": 0.05,
    "gan_loss": "hinge",
    "identity_weight": 1.0,
    "embedding_weight": 1.0,
    "lr": 2e-4,
}

#: Global edits: a stronger pull to small, colour-true edits (at the defaults the first male → female
#: run brightened the whole crop within 250 steps, docs/TRAINING.md).
GLOBAL_WEIGHTS: dict[str, Any] = {"edit_weight": 0.5, "colour_weight": 3.0}


@dataclass(frozen=True)
class EditSpec:
    name: str
    attribute: str
    direction: str
    region: str | None
    """The edited region of a local edit (mouth, eyes); None: a global edit."""
    overrides: dict[str, Any] = field(default_factory=dict)

    def config_fields(self) -> dict[str, Any]:
        """TrainConfig fields of this edit's `edit` run (without data, runs and schedule)."""
        fields: dict[str, Any] = {
            **RECIPE,
            "name": self.name,
            "attribute": self.attribute,
            "direction": self.direction,
            "region": self.region,
        }
        if self.region is None:
            fields.update(GLOBAL_WEIGHTS)
        fields.update(self.overrides)
        return fields

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "attribute": self.attribute,
            "direction": self.direction,
            "region": self.region,
            "overrides": dict(self.overrides),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EditSpec:
        return cls(data["name"], data["attribute"], data["direction"], data.get("region"), data["overrides"])


EDITS: dict[str, EditSpec] = {
    spec.name: spec
    for spec in (
        # synthetic pairs: glasses drawn onto glasses-free faces (trainer/glasses.py); the eye region
        # grown to 0.45 inter-ocular distances: the default 0.18 cuts through the rims (docs/ABLATION.md,
        # "The eye region and the glasses"); the pairs' L1 over the drawn pixels and the detail gate that
        # takes the rims away (docs/ABLATION.md, "Taking drawn rims off")
        EditSpec(
            "remove-eyeglasses",
            "Eyeglasses",
            "remove",
            "eyes",
            {"pair_weight": 10.0, "drawn_pair_weight": 10.0, "detail_gate": 1.5, "region_margin": 0.45},
        ),
        # Δ low-passed (trainer.networks.DeltaLowPass), σ per edit: docs/ABLATION.md, "Δ low-passed"; close
        # mouth's mask-edge term, its detail gate with the term that asks it to hide the teeth, and a region
        # D that sees the whole mask: docs/ABLATION.md, "Hiding the teeth". The priors after them are what
        # the CPU rounds that cleaned the shipped mouth editors added, at the weights they shipped with:
        # nothing written outside the mask ("What the mean hid"), no green or fine colour specks ("Held by
        # a teacher", "A discriminator that knows the editor"), the lips' own colour ("Opened lips keep
        # their colour"), a hand over the mouth left alone ("A hand over the mouth"), a mouth as sharp as
        # its photo ("A soft patch where the mouth was"). Those rounds held a teacher; from the identity,
        # beside D, these weights are untried.
        EditSpec(
            "open-mouth",
            "Mouth_Slightly_Open",
            "add",
            "mouth",
            {
                "delta_lowpass": 0.7,
                "outside_weight": 30.0,
                "colour_detail_weight": 100.0,
                "green_weight": 1000.0,
                "lip_colour_weight": 150.0,
                "upper_lip_weight": 30.0,
                "occluder_weight": 30.0,
            },
        ),
        EditSpec(
            "close-mouth",
            "Mouth_Slightly_Open",
            "remove",
            "mouth",
            {
                "delta_lowpass": 1.15,
                "edge_weight": 5.0,
                "outside_weight": 30.0,
                "detail_gate": 1.5,
                "inner_detail_weight": 10.0,
                "region_box_scale": 1.6,
                "lip_colour_weight": 50.0,
                "mouth_detail_weight": 100.0,
            },
        ),
        EditSpec("male-to-female", "Male", "remove", None),
        EditSpec("old-to-young", "Young", "add", None),
        EditSpec("female-to-male", "Male", "add", None),
        EditSpec("young-to-old", "Young", "remove", None),
    )
}

#: The edits in resources/models (the reverse global edits failed the quality bar and were dropped).
BUNDLED: tuple[str, ...] = (
    "remove-eyeglasses",
    "open-mouth",
    "close-mouth",
    "male-to-female",
    "old-to-young",
)


def edit_specs(names: list[str] | tuple[str, ...] | None = None) -> list[EditSpec]:
    """The specs of `names` (default: the bundled edits); a clear error for an unknown name."""
    chosen = list(names) if names else list(BUNDLED)
    unknown = [name for name in chosen if name not in EDITS]
    if unknown:
        raise ValueError(f"unknown edit {unknown[0]!r} (known: {', '.join(EDITS)})")
    if len(set(chosen)) != len(chosen):
        raise ValueError("an edit is named twice")
    return [EDITS[name] for name in chosen]
