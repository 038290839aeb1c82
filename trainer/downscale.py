"""`diat-studio-train downscale DATA OUT --size S`: a prepared dataset at a smaller crop size.

For a coarse stage or a cheap ablation at 64 px without running detection and alignment again: the
canonical crop is a similarity transform of the photo, so the S px crop of a face is the area-averaged
N px crop (N > S) up to resampling, and its landmarks scale about the pixel centres. Labels, files and
the train / held-out split are kept, so the developers' split (a function of the training rows) is the
same faces at every size.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from trainer.data import DatasetError, PreparedDataset


def downscale_dataset(source: Path | str, out: Path | str, size: int) -> dict[str, object]:
    """Write `out` (must not exist) from `source` at `size` px; returns the new prepare.json."""
    dataset = PreparedDataset.open(source)
    out = Path(out)
    if not 16 <= size < dataset.size:
        raise DatasetError(
            f"--size must be at least 16 and below the dataset's {dataset.size} px, got {size}"
        )
    if out.exists():
        raise DatasetError(f"{out} exists: choose a new folder (nothing was written)")
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    crops = np.lib.format.open_memmap(
        partial / "crops.npy", "w+", np.uint8, (len(dataset.crops), size, size, 3)
    )
    for start in range(0, len(dataset.crops), 256):
        for index, crop in enumerate(np.asarray(dataset.crops[start : start + 256])):
            crops[start + index] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)
    crops.flush()
    del crops
    scale = size / dataset.size
    landmarks = (dataset.landmarks + 0.5) * scale - 0.5  # pixel centres map to pixel centres
    np.save(partial / "landmarks.npy", landmarks.astype(np.float32))
    shutil.copyfile(Path(source) / "labels.csv", partial / "labels.csv")
    info = dict(dataset.info)
    info["template"] = dataset.template.with_size(size).to_dict()
    info["downscaled_from"] = {"folder": str(Path(source).resolve()), "size": dataset.size}
    (partial / "prepare.json").write_text(json.dumps(info, indent=2) + "\n")
    os.replace(partial, out)
    return info
