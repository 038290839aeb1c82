"""`diat-studio-train prepare`: a source of face photos → an aligned dataset of N×N crops, cached on disk.

Every crop is made by the app's own alignment (diat_studio.core.alignment), so a model sees in training
exactly the geometry it will see in the app. Output folder:

- `crops.npy`      N×S×S×3 uint8 RGB (memory-mapped when training)
- `landmarks.npy`  N×68×2 float32, the 68 landmarks in crop coordinates
- `labels.csv`     index, file, split (train / heldout), then one 0/1 column per attribute (+ age)
- `prepare.json`   source, layout, template, split seed, counts, the files whose face was not found,
                   and the data licence

Layouts: `celeba` (images/ + list_attr_celeba.txt), `utkface` (images/ + labels.csv, or labels in the
file names), `custom` (two folders of a user's photos: with/ and without/ the attribute, or any two
folders named by `with_folder` / `without_folder`, whose files are then recorded by their full path).

Nothing damages existing work: the dataset is assembled beside OUT and swapped in whole; an existing
dataset is replaced only with `force`; a source where no face can be aligned writes nothing; Ctrl-C or
SIGTERM keeps the aligned chunks and the same command resumes (trainer.prepare_work).
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from diat_studio.core.alignment import CanonicalTemplate, align_face
from diat_studio.core.errors import DiatError
from diat_studio.core.faces import Box, FaceDetector
from diat_studio.core.image_io import is_image_path, load_photo
from trainer.prepare_work import AlignWork, Chunk, PrepareInterrupted, work_folder
from trainer.stopping import ignore_stop_signals

__all__ = ["PrepareConfig", "PrepareError", "PrepareInterrupted", "prepare_dataset", "read_source"]

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
    with_folder: str | None = None
    """Custom layout: the photos with the attribute (default: SOURCE/with)."""
    without_folder: str | None = None
    """Custom layout: the photos without it (default: SOURCE/without)."""
    stratified: bool = False
    """Hold out the same fraction of each attribute value (custom layout), so that a small dataset has
    held-out faces of both kinds; otherwise the held-out faces are a plain random draw."""


def read_source(
    layout: str,
    source: Path,
    attribute: str = "Attribute",
    folders: tuple[str | None, str | None] = (None, None),
) -> list[SourceItem]:
    """The photos of a source and their labels, in a stable order."""
    if layout == "celeba":
        return _read_celeba(source)
    if layout == "utkface":
        return _read_utkface(source)
    if layout == "custom":
        return _read_custom(source, attribute, folders)
    raise PrepareError(f"unknown layout {layout!r}: use celeba, utkface or custom")


def photo_files(folder: Path) -> list[Path]:
    """The image files under `folder` (sub-folders included), in a stable order."""
    return [p for p in sorted(Path(folder).rglob("*")) if is_image_path(p) and p.is_file()]


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


def _read_custom(source: Path, attribute: str, folders: tuple[str | None, str | None]) -> list[SourceItem]:
    items = []
    for given, folder, value in ((folders[0], "with", 1), (folders[1], "without", 0)):
        path = Path(given) if given else source / folder
        if not path.is_dir():
            raise PrepareError(
                f"{source}: the custom layout needs folders with/ and without/ ({path} missing)"
                if not given
                else f"{path}: no such folder (the photos {folder} the attribute)"
            )
        photos = photo_files(path)
        if not photos:
            raise PrepareError(f"{path}: no photos (JPEG, PNG, WebP, TIFF, BMP) {folder} the attribute")
        items += [SourceItem(p, {attribute: value}) for p in photos]
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


def check_target(out: Path, force: bool) -> None:
    """Refuse to replace a prepared dataset without `force`, and anything else at all."""
    if not out.exists():
        return
    if not out.is_dir():
        raise PrepareError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return
    if not (out / "prepare.json").is_file():
        raise PrepareError(f"{out} is not empty and is not a prepared dataset: choose another folder")
    if not force:
        raise PrepareError(f"{out} already holds a prepared dataset: use --force to replace it")


def prepare_dataset(
    config: PrepareConfig,
    progress: Callable[[int, int], None] | None = None,
    should_abort: Callable[[], bool] | None = None,
    *,
    force: bool = False,
) -> dict[str, object]:
    """Align every photo of the source into `config.out`; returns the summary written to prepare.json.

    Resumes an interrupted prepare of the same photos and settings; raises PrepareInterrupted when
    `should_abort` says so (the finished chunks are kept), PrepareError when no face can be aligned."""
    source = Path(config.source)
    out = Path(config.out)
    check_target(out, force)
    items = read_source(config.layout, source, config.attribute, (config.with_folder, config.without_folder))
    if config.limit:
        items = items[: config.limit]
    fingerprint = {
        **{k: v for k, v in asdict(config).items() if k != "workers"},
        "files": [str(item.path) for item in items],
    }
    work = AlignWork(work_folder(out), fingerprint, len(items))
    _align_all(work, items, config, progress, should_abort)

    chunks = list(work.load())
    kept = [index for chunk in chunks for index in chunk.kept]
    failures = [
        {"file": _file_name(items[index].path, source), "reason": reason}
        for chunk in chunks
        for index, reason in chunk.failures
    ]
    methods: dict[str, int] = {}
    for chunk in chunks:
        for method in chunk.methods:
            methods[method] = methods.get(method, 0) + 1
    count, size = len(kept), config.size
    if count == 0:
        work.discard()
        examples = "; ".join(f"{f['file']}: {f['reason']}" for f in failures[:3])
        raise PrepareError(f"no face could be aligned in any of the {len(items)} photos ({examples})")
    if config.layout == "custom":
        for value, folder in ((1, "with"), (0, "without")):
            if not any(items[index].labels[config.attribute] == value for index in kept):
                work.discard()
                raise PrepareError(f"no face could be aligned in the photos {folder} the attribute")
    crops = np.lib.format.open_memmap(work.folder / "crops.npy", "w+", np.uint8, (count, size, size, 3))
    row = 0
    for chunk in chunks:
        if chunk.crops:
            crops[row : row + len(chunk.crops)] = np.stack(chunk.crops)
            row += len(chunk.crops)
    crops.flush()
    del crops
    np.save(work.folder / "landmarks.npy", np.stack([m for chunk in chunks for m in chunk.landmarks]))

    labels = [items[index].labels for index in kept]
    heldout = _heldout(labels, config)
    names = sorted({key for label in labels for key in label})
    with open(work.folder / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "file", "split", *names])
        for row, index in enumerate(kept):
            item = items[index]
            writer.writerow(
                [row, _file_name(item.path, source), "heldout" if heldout[row] else "train"]
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
        "split": {
            "seed": config.seed,
            "heldout": int(heldout.sum()),
            "train": int(count - heldout.sum()),
            **({"stratified_by": config.attribute} if config.stratified else {}),
        },
        "attributes": names,
        "licence": LICENCES.get(config.layout, ""),
    }
    (work.folder / "prepare.json").write_text(json.dumps(summary, indent=2) + "\n")
    work.finish(out)
    return summary


def _align_all(
    work: AlignWork,
    items: list[SourceItem],
    config: PrepareConfig,
    progress: Callable[[int, int], None] | None,
    should_abort: Callable[[], bool] | None,
) -> None:
    """Align the chunks that are not saved yet; between photos, stop when asked (the chunk in hand is
    dropped: it is at most CHUNK_PHOTOS photos of work)."""
    total = len(items)
    done = work.photos_done
    if progress is not None and done:
        progress(done, total)
    todo = [index for index in work.chunks() if not work.has(index)]
    if not todo:
        return
    pool = _pool(config.workers, total - done)
    try:
        for index in todo:
            first, last = AlignWork.bounds(index, total)
            chunk = Chunk()
            tasks = [(str(item.path), config.layout, config.size) for item in items[first:last]]
            results = pool.map(_align_one, tasks, chunksize=4) if pool is not None else map(_align_one, tasks)
            for offset, result in enumerate(results):
                if should_abort is not None and should_abort():
                    raise PrepareInterrupted(done, total, work.folder)
                if isinstance(result, str):
                    chunk.failures.append((first + offset, result))
                else:
                    crop, marks, method = result
                    chunk.crops.append(crop)
                    chunk.landmarks.append(marks)
                    chunk.methods.append(method)
                    chunk.kept.append(first + offset)
                done += 1
                if progress is not None:
                    progress(done, total)
            work.save(index, chunk, config.size)
            if should_abort is not None and should_abort():
                raise PrepareInterrupted(done, total, work.folder)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def _pool(workers: int, photos: int) -> Executor | None:
    if workers <= 1 or photos < 16:
        return None
    return ProcessPoolExecutor(workers, initializer=ignore_stop_signals)


def _heldout(labels: list[dict[str, int]], config: PrepareConfig) -> np.ndarray:
    """The held-out mask, fixed by the seed: a random draw, or the same fraction of each value of the
    attribute (at least one face of each value that has two or more)."""
    count = len(labels)
    rng = np.random.default_rng(config.seed)
    heldout = np.zeros(count, bool)
    if not config.stratified:
        heldout[rng.permutation(count)[: round(count * config.heldout_fraction)]] = True
        return heldout
    values = np.array([label.get(config.attribute, 0) for label in labels])
    for value in sorted(set(values.tolist())):
        rows = np.flatnonzero(values == value)
        wanted = round(len(rows) * config.heldout_fraction)
        wanted = max(wanted, 1) if len(rows) >= 2 and config.heldout_fraction > 0 else wanted
        heldout[rng.permutation(rows)[:wanted]] = True
    return heldout


def _file_name(path: Path, source: Path) -> str:
    """The photo's name relative to the source, or its full path when it lies elsewhere (a custom
    layout's folders named one by one): `source / name` finds the photo either way."""
    try:
        return path.relative_to(source).as_posix()
    except ValueError:
        return path.resolve().as_posix()
