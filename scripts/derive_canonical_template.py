"""Derive the canonical 68-point mean face used by diat_studio.core.alignment.

Generalised Procrustes analysis over dlib landmarks of real photos (../shared/data/celeba-wild):
each shape is aligned to the current mean by a similarity transform, the mean is re-estimated, and the
result is normalised so that the eye centres lie at (-0.5, 0) and (+0.5, 0) — one unit of inter-ocular
distance, y pointing down. Prints the coordinates as a Python literal for alignment.py.

    .venv/bin/python scripts/derive_canonical_template.py ../shared/data/celeba-wild/images 2000
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from diat_studio.core.alignment import estimate_similarity, eye_centres
from diat_studio.core.faces import FaceDetector
from diat_studio.core.image_io import load_photo


def normalise(shape: np.ndarray) -> np.ndarray:
    left, right = eye_centres(shape)
    centre = (left + right) / 2.0
    d = right - left
    angle = np.arctan2(d[1], d[0])
    c, s = np.cos(-angle), np.sin(-angle)
    rotation = np.array([[c, -s], [s, c]])
    return ((shape - centre) @ rotation.T) / np.hypot(*d)


def main() -> None:
    folder, count = Path(sys.argv[1]), int(sys.argv[2])
    detector = FaceDetector()
    shapes = []
    for path in sorted(folder.iterdir())[:count]:
        faces = detector.detect(load_photo(path).pixels)
        if len(faces) == 1:
            shapes.append(normalise(faces[0].landmarks))
    print(f"# {len(shapes)} faces", file=sys.stderr)
    mean = np.mean(shapes, axis=0)
    for _ in range(10):
        aligned = []
        for shape in shapes:
            matrix = estimate_similarity(shape, mean)
            aligned.append(shape @ matrix[:, :2].T + matrix[:, 2])
        mean = normalise(np.mean(aligned, axis=0))
    # Make the mean exactly left/right symmetric (mirror pairs of the iBUG-68 scheme).
    mirrored = mean[MIRROR] * (-1.0, 1.0)
    mean = normalise((mean + mirrored) / 2.0)
    print("CANONICAL_SHAPE = np.array([")
    for row in range(0, 68, 4):
        print("    " + " ".join(f"({x:.4f}, {y:.4f})," for x, y in mean[row : row + 4]))
    print("])")


MIRROR = np.array(
    [
        16,
        15,
        14,
        13,
        12,
        11,
        10,
        9,
        8,
        7,
        6,
        5,
        4,
        3,
        2,
        1,
        0,
        26,
        25,
        24,
        23,
        22,
        21,
        20,
        19,
        18,
        17,
        27,
        28,
        29,
        30,
        35,
        34,
        33,
        32,
        31,
        45,
        44,
        43,
        42,
        47,
        46,
        39,
        38,
        37,
        36,
        41,
        40,
        54,
        53,
        52,
        51,
        50,
        49,
        48,
        59,
        58,
        57,
        56,
        55,
        64,
        63,
        62,
        61,
        60,
        67,
        66,
        65,
    ]
)

if __name__ == "__main__":
    main()
