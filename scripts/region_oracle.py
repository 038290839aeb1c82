"""How much of an attribute a local edit's region can take away at all (docs/ABLATION.md, "The eye region
and the glasses").

For the held-out faces that have the source value of the attribute (glasses on, for remove eyeglasses),
the region of *other* held-out faces that have the target value is composited in through the region's
soft mask — an oracle edit that ignores identity, seams and lighting — and the independent evaluator
says how often the target is reached, for each margin around the region's landmark hull. The blur of the
same region (the evaluate command's blur control) is printed beside it. If even the oracle stays far
below the quality bar's 80%, no editor trained with that mask can reach it.

    .venv/bin/python scripts/region_oracle.py runs/00011-evaluator-Eyeglasses-classifier \\
        --attribute Eyeglasses --direction remove --region eyes --margins 0.18,0.3,0.45,0.6

Prints one JSON line per margin.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from diat_studio.core.pipeline import DEFAULT_FEATHER
from diat_studio.core.regions import REGION_MARGIN, RegionKind
from trainer.data import PreparedDataset, region_masks
from trainer.measures import blur_inside, composite, target_rate
from trainer.stages import load_trained


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("evaluator", type=Path, help="the attribute's evaluator run (never the guide)")
    parser.add_argument("--data", type=Path, default=Path("data/wild"))
    parser.add_argument("--attribute", required=True)
    parser.add_argument("--direction", choices=("add", "remove"), required=True)
    parser.add_argument("--region", choices=[r.value for r in RegionKind if r is not RegionKind.FACE])
    parser.add_argument("--margins", default="", help="comma-separated; default: the region's own")
    parser.add_argument("--split", default="heldout")
    parser.add_argument("--threads", type=int, default=1)
    options = parser.parse_args()
    torch.set_num_threads(options.threads)

    region = RegionKind(options.region)
    target = 1 if options.direction == "add" else 0
    dataset = PreparedDataset.open(options.data)
    rows = dataset.indices(options.split, options.attribute, 1 - target)
    donors = dataset.indices(options.split, options.attribute, target)
    if len(donors) < len(rows):
        raise SystemExit(f"only {len(donors)} faces with the target for {len(rows)} without it")
    evaluator = load_trained(options.evaluator, "classifier", "classifier_width").eval()
    crops = np.asarray(dataset.crops[rows])
    donor_crops = np.asarray(dataset.crops[donors[: len(rows)]])

    def success(images: np.ndarray) -> float:
        return target_rate(evaluator, images, target)

    margins = [float(m) for m in options.margins.split(",") if m.strip()] or [REGION_MARGIN[region]]
    common = {"faces": len(rows), "input": success(crops), "donor_faces_whole": success(donor_crops)}
    for margin in margins:
        masks = region_masks(dataset.landmarks[rows], region, dataset.size, DEFAULT_FEATHER, margin)[:, 0]
        row = {
            "region": region.value,
            "margin": margin,
            "coverage": round(float(masks.mean()), 4),
            "oracle_region_swap": success(composite(crops, donor_crops, masks)),
            "blur_control": success(blur_inside(crops, masks)),
            **common,
        }
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
