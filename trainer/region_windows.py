"""Square windows on a local edit's region, for asking the two-sample test *where* an edit gives itself away.

The two-sample test of `evaluate` (trainer.measures.two_sample_accuracies) looks at the whole crop, where a
local edit is a small part of what the classifier sees: its verdict mixes the edit with the faces around it,
and its seeds disagree (close mouth, 2026-11-29: 53.0 / 83.0 / 55.7%). Two views split the two apart
(scripts/realism_diagnostic.py `--region-window`, `--context`):

- `region_windows`: the same square around the region (the mouth, or both eyes and the frames' bridge) cut
  out of every face and resized to one size — the test on it reads the edit and its near surroundings only;
- `cover_region`: the same square filled with mid-grey in place — the test on it reads only the rest of the
  face, which a local edit never changes: how far the two sets differ in what the edit cannot reach (an
  open mouth's raised cheeks, say).

The square is the same shape on both sets (sized by the eye distance, centred on the region's landmarks),
so neither view gives away the region's own outline, as a per-face mask would: the mask of an open mouth is
taller than a closed one's.
"""

from __future__ import annotations

import cv2
import numpy as np

from diat_studio.core.regions import RegionKind, inter_ocular_distance

#: Per region: the 68-point landmarks the window is centred on (those of trainer.edit_stage.REGION_BOXES),
#: and its side in eye distances (diat_studio.core.regions.inter_ocular_distance). The mouth's square holds
#: the lips, their corners and the folds beside them; the eyes' holds both eyes, the brows' lower edge and
#: the frames' temples.
REGION_WINDOWS: dict[RegionKind, tuple[range, float]] = {
    RegionKind.MOUTH: (range(48, 68), 1.6),
    RegionKind.EYES: (range(36, 48), 2.6),
}

#: Mid-grey of `cover_region`.
COVER_LEVEL = 128


def window_boxes(landmarks: np.ndarray, region: RegionKind) -> np.ndarray:
    """Per face (landmarks N×68×2, crop pixels), the square (centre x, centre y, side) in crop pixels."""
    if region not in REGION_WINDOWS:
        raise ValueError(f"no region window for {region.value!r}: only the mouth and the eyes have one")
    indices, sides = REGION_WINDOWS[region]
    marks = np.asarray(landmarks, dtype=np.float64)
    eye_distance = np.array([inter_ocular_distance(face) for face in marks])
    centre = marks[:, list(indices)].mean(1)
    return np.column_stack([centre, sides * eye_distance])


def region_windows(
    images: np.ndarray, landmarks: np.ndarray, region: RegionKind, size: int = 64
) -> np.ndarray:
    """Each image's region square, resized (bilinearly, the border reflected) to `size`×`size` (uint8)."""
    windows = []
    for image, (cx, cy, side) in zip(images, window_boxes(landmarks, region), strict=True):
        scale = size / side
        # landmarks are pixel indices (a pixel's centre at its index, as in region_patches): the square's
        # centre cx goes to the window's centre, (size − 1) / 2
        matrix = np.array(
            [[scale, 0.0, scale * (side / 2 - cx) - 0.5], [0.0, scale, scale * (side / 2 - cy) - 0.5]]
        )
        windows.append(
            cv2.warpAffine(
                np.ascontiguousarray(image),
                matrix,
                (size, size),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT_101,
            )
        )
    return np.stack(windows)


def cover_region(images: np.ndarray, landmarks: np.ndarray, region: RegionKind) -> np.ndarray:
    """A copy of `images` with each one's region square (rounded outwards to whole pixels) mid-grey."""
    covered = np.array(images, copy=True)
    height, width = covered.shape[1:3]
    for image, (cx, cy, side) in zip(covered, window_boxes(landmarks, region), strict=True):
        # (a hair of tolerance, so that a float error in the eye distance does not add a row)
        x0, x1 = int(np.floor(cx + 0.5 - side / 2 + 1e-6)), int(np.ceil(cx + 0.5 + side / 2 - 1e-6))
        y0, y1 = int(np.floor(cy + 0.5 - side / 2 + 1e-6)), int(np.ceil(cy + 0.5 + side / 2 - 1e-6))
        image[max(y0, 0) : min(y1, height), max(x0, 0) : min(x1, width)] = COVER_LEVEL
    return covered
