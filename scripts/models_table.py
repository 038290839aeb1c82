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
        "| edit | kind | variant | T steps | attribute success (before) | identity kept "
        "| PSNR outside mask | ONNX MB | card |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---|")
    for entry in ModelRegistry([folder]).available():
        manifest = entry.manifest
        assert manifest is not None
        metrics, training = manifest.metrics, manifest.training
        size = entry.onnx_bytes() / 1e6
        kind = f"local ({manifest.region.value})" if manifest.kind == "local" else "global"
        psnr = metrics.get("psnr_outside_mask_db")
        print(
            f"| {manifest.label} | {kind} | {training.get('variant', '?').upper()} "
            f"| {training.get('transform', {}).get('steps', '?')} "
            f"| {100 * metrics['attribute_success_rate']:.1f}% "
            f"({100 * metrics['attribute_rate_before_edit']:.1f}%) "
            f"| {100 * metrics['identity_kept_rate']:.1f}% | {f'{psnr:.1f} dB' if psnr else '—'} "
            f"| {size:.2f} | [docs/models/{manifest.name}.md](docs/models/{manifest.name}.md) |"
        )


if __name__ == "__main__":
    main()
