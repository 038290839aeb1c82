"""`diat-studio-train prepare`: a source of face photos → an aligned dataset of N×N crops, cached on disk.

Every crop is made by the app's own alignment (diat_studio.core.alignment), so a model sees in training
exactly the geometry it will see in the app. Output folder:

- `crops.npy`      N×S×S×3 uint8 RGB (memory-mapped when training)
- `landmarks.npy`  N×68×2 float32, the 68 landmarks in crop coordinates
- `labels.csv`     index, file, split (train / heldout), then one 0/1 column per attribute (+ age)
- `prepare.json`   source, layout, template, split seed, counts, the files whose face was not found,
                   and the data licence

Layouts: `celeba` (images/ + list_attr_celeba.txt), `utkface` (images/ + labels.csv, or labels in the
file names), `custom` (two folders of a user's photos: with/ and without/ the attribute).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from diat_studio.core.alignment import CanonicalTemplate, align_face
from diat_studio.core.errors import DiatError
from diat_studio.core.faces import Box, FaceDetector
from diat_studio.core.image_io import is_image_path, load_photo

LICENCES = {
    "celeba": "CelebA: non-commercial research and educational use only (image copyrights are not the "
    "CUHK authors'). Models trained on it inherit these terms.",
    "utkface": "UTKFace: non-commercial research only (image copyrights stay with their owners). Models "
    "trained on it inherit these terms.",
    "custom": "Your own photos: the terms of your data apply.",
}

#: UTKFace has ages, not CelebA's subjective "Young": below this age counts as young.
UTKFACE_YOUNG_BELOW = 35


class PrepareError(DiatError):
    """The source cannot be read as the given layout."""


@dataclass
class SourceItem:
    path: Path
    labels: dict[str, int]


@dataclass
class PrepareConfig:
    source: str
    out: str
    layout: str = "celeba"
    size: int = 128
    heldout_fraction: float = 0.1
    seed: int = 0
    limit: int | None = None
    attribute: str = "Attribute"
    """Column name for the custom layout (with/ → 1, without/ → 0)."""
    workers: int = field(default_factory=lambda: min(os.cpu_count() or 1, 8))


def read_source(layout: str, source: Path, attribute: str = "Attribute") -> list[SourceItem]:
    """The photos of a source and their labels, in a stable order."""
    if layout == "celeba":
        return _read_celeba(source)
    if layout == "utkface":
        return _read_utkface(source)
    if layout == "custom":
        return _read_custom(source, attribute)
    raise PrepareError(f"unknown layout {layout!r}: use celeba, utkface or custom")


def _images_folder(source: Path) -> Path:
    return source / "images" if (source / "images").is_dir() else source


def _read_celeba(source: Path) -> list[SourceItem]:
    table = source / "list_attr_celeba.txt"
    if not table.is_file():
        raise PrepareError(f"{source}: no list_attr_celeba.txt (CelebA layout)")
    lines = table.read_text().splitlines()
    names = lines[1].split()
    images = _images_folder(source)
    items = []
    for line in lines[2:]:
        parts = line.split()
        if len(parts) != len(names) + 1:
            continue
        path = images / parts[0]
        if path.is_file():
            items.append(SourceItem(path, {n: int(v == "1") for n, v in zip(names, parts[1:], strict=True)}))
    if not items:
        raise PrepareError(f"{source}: list_attr_celeba.txt names no image found in {images}")
    return items


def _read_utkface(source: Path) -> list[SourceItem]:
    images = _images_folder(source)
    table = source / "labels.csv"
    rows: list[tuple[str, int, str]] = []
    if table.is_file():
        with open(table, newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append((row["file"], int(row["age"]), row["gender"].strip().lower()))
    else:  # age_gender_race_date.jpg.chip.jpg, gender 0 = male, 1 = female
        for path in sorted(images.iterdir()):
            parts = path.name.split("_")
            if len(parts) >= 3 and parts[0].isdigit() and parts[1] in ("0", "1"):
                rows.append((path.name, int(parts[0]), "male" if parts[1] == "0" else "female"))
    items = [
        SourceItem(
            images / name,
            {"age": age, "Male": int(gender == "male"), "Young": int(age < UTKFACE_YOUNG_BELOW)},
        )
        for name, age, gender in rows
        if (images / name).is_file()
    ]
    if not items:
        raise PrepareError(f"{source}: no UTKFace images with labels found")
    return items


def _read_custom(source: Path, attribute: str) -> list[SourceItem]:
    items = []
    for folder, value in (("with", 1), ("without", 0)):
        path = source / folder
        if not path.is_dir():
            raise PrepareError(
                f"{source}: the custom layout needs folders with/ and without/ ({path} missing)"
            )
        items += [SourceItem(p, {attribute: value}) for p in sorted(path.rglob("*")) if is_image_path(p)]
    if not items:
        raise PrepareError(f"{source}: no photos in with/ or without/")
    return items


# -- alignment (runs in worker processes) -----------------------------------------------------------------

_detector: FaceDetector | None = None


def _worker_detector() -> FaceDetector:
    global _detector
    if _detector is None:
        _detector = FaceDetector()
    return _detector


def plausible_landmarks(landmarks: np.ndarray, width: int, height: int) -> bool:
    """A sanity check for landmarks found on a guessed box: upright face order, sensible size."""
    left_eye, right_eye = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    eye_distance = float(np.hypot(*(right_eye - left_eye)))
    eyes_y = (left_eye[1] + right_eye[1]) / 2
    return (
        0.12 * width < eye_distance < 0.8 * width
        and left_eye[0] < landmarks[30, 0] < right_eye[0]
        and eyes_y < landmarks[30, 1] < landmarks[62, 1] < landmarks[8, 1]
    )


def find_landmarks(rgb: np.ndarray, layout: str) -> tuple[np.ndarray | None, str]:
    """68 landmarks of the main face, with the layout-specific help the source needs.

    CelebA crops are small (faces ≈ 50 px): upsample before detecting. UTKFace faces touch the border:
    pad by reflection first. Pre-cropped sources fall back to the whole frame as the face box.
    """
    detector = _worker_detector()
    height, width = rgb.shape[:2]
    if layout == "celeba":
        scale = 3.0
        work = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_CUBIC)
        faces = detector.detect(work)
        if faces:
            return faces[0].landmarks / scale, "detected"
        box = Box(0.15 * work.shape[1], 0.2 * work.shape[0], 0.85 * work.shape[1], 0.85 * work.shape[0])
        guess = detector.landmarks(work, box) / scale
    elif layout == "utkface":
        pad = round(0.25 * max(height, width))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
        faces = detector.detect(padded)
        if faces:
            return faces[0].landmarks - pad, "detected"
        guess = detector.landmarks(padded, Box(pad, pad, pad + width, pad + height)) - pad
    else:
        faces = detector.detect(rgb)
        return (faces[0].landmarks, "detected") if faces else (None, "")
    return (guess, "known box") if plausible_landmarks(guess, width, height) else (None, "")


def _align_one(task: tuple[str, str, int]) -> tuple[np.ndarray, np.ndarray, str] | str:
    path, layout, size = task
    try:
        rgb = load_photo(path).pixels
        landmarks, method = find_landmarks(rgb, layout)
    except DiatError as exc:
        return f"unreadable: {exc}"
    if landmarks is None:
        return "no face found"
    template = CanonicalTemplate(size=size)
    aligned = align_face(rgb, landmarks, template)
    return aligned.crop, aligned.to_crop(landmarks).astype(np.float32), method


def prepare_dataset(
    config: PrepareConfig, progress: Callable[[int, int], None] | None = None
) -> dict[str, object]:
    """Align every photo of the source into `config.out`; returns the summary written to prepare.json."""
    source = Path(config.source)
    out = Path(config.out)
    items = read_source(config.layout, source, config.attribute)
    if config.limit:
        items = items[: config.limit]
    out.mkdir(parents=True, exist_ok=True)
    size = config.size
    crops = np.lib.format.open_memmap(out / "crops.partial.npy", "w+", np.uint8, (len(items), size, size, 3))
    landmarks = np.zeros((len(items), 68, 2), np.float32)
    kept: list[int] = []
    methods: dict[str, int] = {}
    failures: list[dict[str, str]] = []
    tasks = [(str(item.path), config.layout, size) for item in items]
    for index, result in enumerate(_map(tasks, config.workers)):
        if isinstance(result, str):
            failures.append({"file": str(items[index].path.relative_to(source)), "reason": result})
        else:
            crops[len(kept)], landmarks[len(kept)], method = result
            methods[method] = methods.get(method, 0) + 1
            kept.append(index)
        if progress is not None:
            progress(index + 1, len(items))
    crops.flush()
    count = len(kept)
    final = np.lib.format.open_memmap(out / "crops.npy.partial", "w+", np.uint8, (count, size, size, 3))
    final[:] = crops[:count]
    final.flush()
    del crops, final
    os.replace(out / "crops.npy.partial", out / "crops.npy")
    (out / "crops.partial.npy").unlink()
    np.save(out / "landmarks.npy", landmarks[:count])

    rng = np.random.default_rng(config.seed)
    heldout = np.zeros(count, bool)
    heldout[rng.permutation(count)[: round(count * config.heldout_fraction)]] = True
    names = sorted({key for index in kept for key in items[index].labels})
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "file", "split", *names])
        for row, index in enumerate(kept):
            item = items[index]
            writer.writerow(
                [row, item.path.relative_to(source).as_posix(), "heldout" if heldout[row] else "train"]
                + [item.labels.get(name, 0) for name in names]
            )
    summary: dict[str, object] = {
        "config": asdict(config),
        "source": str(source.resolve()),
        "template": CanonicalTemplate(size=size).to_dict(),
        "photos": len(items),
        "aligned": count,
        "landmarks_by": methods,
        "not_aligned": len(failures),
        "failures": failures,
        "split": {"seed": config.seed, "heldout": int(heldout.sum()), "train": int(count - heldout.sum())},
        "attributes": names,
        "licence": LICENCES.get(config.layout, ""),
    }
    (out / "prepare.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _map(
    tasks: list[tuple[str, str, int]], workers: int
) -> Iterator[tuple[np.ndarray, np.ndarray, str] | str]:
    if workers <= 1 or len(tasks) < 16:
        yield from map(_align_one, tasks)
        return
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(_align_one, tasks, chunksize=16)
