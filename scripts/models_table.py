"""Print the Markdown table of bundled models (for README.md) from their manifests.

.venv/bin/python scripts/models_table.py [resources/models]
"""

from __future__ import annotations

import sys
from pathlib import Path

from diat_studio.core.registry import ModelRegistry


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("resources/models")
    print(
        "| edit | kind | T steps | success (blur control) | identity kept (mean distance) "
        "| two-sample accuracy | ΔE in the mask | already-target ΔE | verdict | card |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
    for entry in ModelRegistry([folder]).available():
        manifest = entry.manifest
        assert manifest is not None
        m, training = manifest.metrics, manifest.training
        kind = f"local ({manifest.region.value})" if manifest.kind == "local" else "global"
        if manifest.transform_passes > 1:
            kind += f", {manifest.transform_passes} passes"
        if manifest.mirror_average:
            kind += ", mirrored"
        missed = m.get("quality_bar_missed")
        verdict = "—" if missed is None else "passes" if not missed else f"experimental ({len(missed)})"
        print(
            f"| {manifest.display_name} | {kind} | {_steps(training.get('transform', {}))} "
            f"| {_pct(m, 'attribute_success_rate')} ({_pct(m, 'blur_control_success_rate')}) "
            f"| {_pct(m, 'identity_kept_rate')} ({_num(m, 'identity_mean_distance', '.2f')}) "
            f"| {_pct(m, 'two_sample_accuracy')} | {_num(m, 'mean_delta_e_face', '.1f')} "
            f"| {_num(m, 'already_target_delta_e', '.1f')} | {verdict} "
            f"| [docs/models/{manifest.name}.md](docs/models/{manifest.name}.md) |"
        )


def _steps(transform: dict) -> str:
    """The transform's steps; "first + second (+ …)" for a run continued from others, the oldest first."""
    chain = [str(transform.get("steps", "?"))]
    earlier = transform.get("continued_from")
    while earlier:
        chain.append(str(earlier.get("steps", "?")))
        earlier = earlier.get("continued_from")
    return " + ".join(reversed(chain))


def _pct(metrics: dict, key: str) -> str:
    return f"{100 * metrics[key]:.1f}%" if key in metrics else "—"


def _num(metrics: dict, key: str, form: str) -> str:
    return format(metrics[key], form) if key in metrics else "—"


if __name__ == "__main__":
    main()
