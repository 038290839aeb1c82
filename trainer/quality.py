"""The quality bar a bundled edit must pass to be offered by default (issue: "edits a person would keep").

Each target is a metric written by `evaluate` on held-out faces, a direction and a threshold. An edit
that misses any is shipped `experimental` (hidden in the app and `diat-studio batch` unless asked for);
its card lists what it missed. Local edits are also bit-identical outside their mask: the app's
paste-back guarantees that, so it is not a metric here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    at_least: bool
    threshold: float
    percent: bool = False

    @property
    def text(self) -> str:
        value = f"{100 * self.threshold:.0f}%" if self.percent else f"{self.threshold:g}"
        return ("≥ " if self.at_least else "≤ ") + value

    def met(self, value: float) -> bool:
        return value >= self.threshold if self.at_least else value <= self.threshold

    def shown(self, value: float) -> str:
        return f"{100 * value:.1f}%" if self.percent else f"{value:.3g}"


QUALITY_BAR: tuple[Target, ...] = (
    Target("attribute_success_rate", "attribute success (independent evaluator)", True, 0.80, percent=True),
    Target("success_over_blur_points", "success over the blur control (points)", True, 40.0),
    Target("identity_kept_rate", "identity kept (dlib distance < 0.6)", True, 0.95, percent=True),
    Target("identity_mean_distance", "mean identity distance", False, 0.40),
    Target(
        "two_sample_accuracy",
        "realism: two-sample test accuracy (50% = indistinguishable)",
        False,
        0.80,
        percent=True,
    ),
    Target("grey_stays_grey", "grey faces stay grey", True, 1.0, percent=True),
    Target("already_target_delta_e", "faces that already have it: mean ΔE", False, 3.0),
    Target("already_target_identity_distance", "faces that already have it: identity distance", False, 0.25),
)


#: The one target a person judges: of the random grid's faces (looked at at 100%), how many show colour
#: blotches, stripes, mosaics or patches. Recorded by `scripts/write_model_card.py --grid-artefacts N`;
#: any above 0 misses the bar. Absent (not yet looked at) it is not counted by `missed_targets` — the
#: card then says that nobody has looked.
GRID_ARTEFACTS = "grid_faces_with_artefacts"


def missed_targets(metrics: dict[str, Any]) -> list[str]:
    """The keys of the targets `metrics` misses; a target whose metric is absent counts as missed, except
    the looked-at grid (`GRID_ARTEFACTS`), which misses only when a person counted artefacts."""
    missed = [t.key for t in QUALITY_BAR if t.key not in metrics or not t.met(float(metrics[t.key]))]
    if int(metrics.get(GRID_ARTEFACTS) or 0) > 0:
        missed.append(GRID_ARTEFACTS)
    return missed
