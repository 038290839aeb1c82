"""Reading a prepared dataset (see trainer.prepare) for training and evaluation."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch

from diat_studio.core.alignment import CanonicalTemplate
from diat_studio.core.regions import Polygon, RegionKind, inter_ocular_distance, region_polygon

# iBUG-68 index of each point's mirror image (for horizontal flips).
MIRROR_68 = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0,
     26, 25, 24, 23, 22, 21, 20, 19, 18, 17,
     27, 28, 29, 30, 35, 34, 33, 32, 31,
     45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40,
     54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55,
     64, 63, 62, 61, 60, 67, 66, 65]
)  # fmt: skip


#: Seed of the developers' split (see PreparedDataset.with_dev_split); fixed so that runs agree on it.
DEV_SPLIT_SEED = 20161018


class DatasetError(ValueError):
    pass


@dataclass
class PreparedDataset:
    """Crops, landmarks and labels of one prepared folder, memory-mapped."""

    folder: Path
    crops: np.ndarray
    landmarks: np.ndarray
    split: np.ndarray
    labels: dict[str, np.ndarray]
    files: list[str]
    info: dict[str, object]

    @classmethod
    def open(cls, folder: Path | str) -> PreparedDataset:
        folder = Path(folder)
        for name in ("crops.npy", "landmarks.npy", "labels.csv", "prepare.json"):
            if not (folder / name).is_file():
                raise DatasetError(
                    f"{folder} is not a prepared dataset ({name} missing): run `prepare` first"
                )
        crops = np.load(folder / "crops.npy", mmap_mode="r")
        landmarks = np.load(folder / "landmarks.npy")
        with open(folder / "labels.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        columns = [c for c in (rows[0].keys() if rows else []) if c not in ("index", "file", "split")]
        labels = {c: np.array([int(float(row[c])) for row in rows]) for c in columns}
        split = np.array([row["split"] for row in rows])
        info = json.loads((folder / "prepare.json").read_text())
        if len(rows) != len(crops):
            raise DatasetError(f"{folder}: labels.csv has {len(rows)} rows for {len(crops)} crops")
        return cls(folder, crops, landmarks, split, labels, [row["file"] for row in rows], info)

    @property
    def size(self) -> int:
        return int(self.crops.shape[1])

    @property
    def template(self) -> CanonicalTemplate:
        return CanonicalTemplate.from_dict(self.info["template"])  # type: ignore[arg-type]

    @property
    def licence(self) -> str:
        return str(self.info.get("licence", ""))

    def with_dev_split(self, fraction: float, seed: int = DEV_SPLIT_SEED) -> PreparedDataset:
        """This dataset with `fraction` of its training faces moved to a "dev" split.

        The developers' split is where weights are swept and runs compared: the held-out split stays for
        the final numbers only. The choice depends on the fraction and seed alone (not on the run), so
        every run with the same fraction leaves out the same faces.
        """
        if not 0.0 <= fraction < 1.0:
            raise DatasetError(f"the dev fraction must be in [0, 1), got {fraction}")
        train = np.flatnonzero(self.split == "train")
        chosen = np.random.default_rng(seed).permutation(train)[: round(fraction * len(train))]
        split = self.split.copy()
        split[chosen] = "dev"
        return replace(self, split=split)

    def indices(self, split: str, attribute: str | None = None, value: int | None = None) -> np.ndarray:
        """Row indices of a split ("train", "dev", "heldout" or "all"), optionally with attribute == value."""
        chosen = np.ones(len(self.split), bool) if split == "all" else self.split == split
        if attribute is not None:
            if attribute not in self.labels:
                known = ", ".join(sorted(self.labels))
                raise DatasetError(f"attribute {attribute!r} is not in {self.folder} (has: {known})")
            chosen &= self.labels[attribute] == value
        return np.flatnonzero(chosen)


class BatchSampler:
    """Random batches from a set of rows, as tensors in [-1, 1] (+ region masks), with random flips."""

    def __init__(
        self,
        dataset: PreparedDataset,
        rows: np.ndarray,
        batch_size: int,
        seed: int,
        flip: bool = True,
        region: RegionKind | None = None,
        feather: float = 0.15,
        margin: float | None = None,
    ) -> None:
        if len(rows) == 0:
            raise DatasetError("no training faces match the requested split and attribute")
        self.dataset = dataset
        self.rows = rows
        self.batch_size = batch_size
        self.rng = np.random.default_rng(seed)
        self.flip = flip
        self.region = region
        self.feather = feather
        self.margin = margin

    def state(self) -> dict[str, object]:
        return self.rng.bit_generator.state

    def restore(self, state: dict[str, object]) -> None:
        self.rng.bit_generator.state = state

    def next(self) -> dict[str, torch.Tensor]:
        chosen = np.sort(
            self.rng.choice(self.rows, self.batch_size, replace=len(self.rows) < self.batch_size)
        )
        flips = self.rng.random(self.batch_size) < 0.5 if self.flip else np.zeros(self.batch_size, bool)
        return self.load(chosen, flips)

    def load(self, rows: np.ndarray, flips: np.ndarray | None = None) -> dict[str, torch.Tensor]:
        images = np.asarray(self.dataset.crops[rows])
        landmarks = self.dataset.landmarks[rows].copy()
        if flips is not None and flips.any():
            size = images.shape[2]
            images[flips] = images[flips, :, ::-1]
            landmarks[flips] = landmarks[flips][:, MIRROR_68] * np.array([-1.0, 1.0]) + np.array(
                [size - 1, 0.0]
            )
        batch = {
            "image": to_tensor(images),
            "rows": torch.from_numpy(np.asarray(rows)),
            "landmarks": torch.from_numpy(np.asarray(landmarks, np.float32)),
        }
        if self.region is not None:
            batch["mask"] = torch.from_numpy(
                region_masks(landmarks, self.region, images.shape[1], self.feather, self.margin)
            )
        return batch


def region_masks(
    landmarks: np.ndarray, region: RegionKind, size: int, feather: float, margin: float | None = None
) -> np.ndarray:
    """N×1×S×S float32 soft masks of a region, from crop-space landmarks (same code as the app); `margin`
    around the landmark hull, None = the region's default."""
    masks = np.zeros((len(landmarks), 1, size, size), np.float32)
    for index, marks in enumerate(landmarks):
        polygon = region_polygon(region, marks, margin)
        eye_distance = float(np.hypot(*(marks[42:48].mean(0) - marks[36:42].mean(0))))
        masks[index, 0] = polygon.rasterise(size, size, feather * eye_distance).full(size, size)
    return masks


#: The inner lips of the iBUG-68 landmarks: what lies inside them (teeth, the dark of the mouth) is what a
#: closed mouth hides.
INNER_LIPS = tuple(range(60, 68))


#: Upper and lower inner-lip landmarks facing each other: their mean distance is the mouth's opening.
_UPPER_INNER, _LOWER_INNER = [61, 62, 63], [67, 66, 65]


def _grown(fill: np.ndarray, radius: int) -> np.ndarray:
    """A 0/1 uint8 fill dilated by a disc of `radius` pixels (itself for 0)."""
    if radius <= 0:
        return fill
    return cv2.dilate(fill, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))


def inner_mouth_masks(
    landmarks: np.ndarray, size: int, grow: float = 0.06, closed_below: float = 0.04
) -> np.ndarray:
    """N×1×S×S float32 0/1 masks of what lies between the inner lips (their landmarks' convex hull), grown
    by `grow` inter-ocular distances so the teeth at the lips' edge count too; all zero for a mouth whose
    inner lips are less than `closed_below` inter-ocular distances apart (closed: it hides nothing)."""
    masks = np.zeros((len(landmarks), 1, size, size), np.float32)
    for index, marks in enumerate(np.asarray(landmarks, np.float64)):
        iod = inter_ocular_distance(marks)
        opening = np.linalg.norm(marks[_UPPER_INNER] - marks[_LOWER_INNER], axis=1).mean()
        hull = cv2.convexHull(marks[list(INNER_LIPS)].astype(np.float32)).reshape(-1, 2)
        if opening < closed_below * iod or len(hull) < 3:
            continue
        masks[index, 0] = _grown(Polygon.from_array(hull).fill(size, size), round(grow * iod))
    return masks


#: The outer lips' landmarks (dlib's 68-point scheme), in order around the mouth.
OUTER_LIPS = tuple(range(48, 60))


def lip_ring_masks(landmarks: np.ndarray, size: int, inner: np.ndarray) -> np.ndarray:
    """N×1×S×S float32 0/1 masks of the lips themselves: inside the outer lips' polygon, outside `inner`
    (inner_mouth_masks' teeth region) — where a mouth's own lip colour is read."""
    rings = np.zeros((len(landmarks), 1, size, size), np.float32)
    for index, marks in enumerate(np.asarray(landmarks, np.float64)):
        outer = Polygon.from_array(marks[list(OUTER_LIPS)]).fill(size, size) > 0
        rings[index, 0] = outer & (inner[index, 0] == 0)
    return rings


#: Inter-ocular distances by which the outer lips' polygon is grown for the mouth (`mouth_detail_masks`),
#: and the inner and outer radius of the skin ring around it.
MOUTH_GROW, SKIN_RING = 0.05, (0.12, 0.30)


def mouth_detail_masks(landmarks: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(mouth, skin ring): two N×1×S×S float32 0/1 masks — the outer lips' polygon grown by MOUTH_GROW
    inter-ocular distances (the lips and what lies between them), and the ring of skin around it between
    SKIN_RING's radii (cheeks, chin and upper lip, which a mouth edit leaves alone) — where a mouth's fine
    detail and the photo's own are read (trainer.losses.soft_mouth_penalty, trainer.measures)."""
    mouths = np.zeros((len(landmarks), 1, size, size), np.float32)
    rings = np.zeros_like(mouths)
    for index, marks in enumerate(np.asarray(landmarks, np.float64)):
        iod = inter_ocular_distance(marks)
        lips = Polygon.from_array(marks[list(OUTER_LIPS)]).fill(size, size)
        mouths[index, 0] = _grown(lips, round(MOUTH_GROW * iod)) > 0
        inner, outer = (_grown(lips, round(radius * iod)) > 0 for radius in SKIN_RING)
        rings[index, 0] = outer & ~inner
    return mouths, rings


def upper_lip_bands(landmarks: np.ndarray, size: int) -> np.ndarray:
    """N×1×S×S float32 0/1 masks of the upper lip's outer half: between the outer upper lip (landmarks
    48-54) and the line halfway to its inner edge (61-63) — the part of the lips an opening mouth leaves
    where it is."""
    bands = np.zeros((len(landmarks), 1, size, size), np.float32)
    for index, marks in enumerate(np.asarray(landmarks, np.float64)):
        outer = marks[48:55]
        halfway = [(marks[53] + marks[63]) / 2, (marks[51] + marks[62]) / 2, (marks[49] + marks[61]) / 2]
        bands[index, 0] = Polygon.from_array(np.concatenate([outer, halfway])).fill(size, size) > 0
    return bands


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N×H×W×3 uint8 → N×3×H×W float32 in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def to_uint8(tensor: torch.Tensor) -> np.ndarray:
    """N×3×H×W in [-1, 1] → N×H×W×3 uint8."""
    array = tensor.detach().float().clamp(-1, 1).add(1).mul(127.5).round().byte()
    return array.permute(0, 2, 3, 1).cpu().numpy()
