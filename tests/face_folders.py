"""Two folders of real faces, with and without an attribute, for the `custom` command's tests.

`lfw_folders` copies a few dozen LFW photos with and without eyeglasses from ../shared/data (the test is
skipped where that is absent); `astronaut_folders` draws glasses onto varied copies of the astronaut photo
(public domain, always there), for tests that need real faces but not real variety.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from diat_studio.core.faces import Face
from tests.conftest import shared_data


def lfw_folders(root: Path, per_class: int, attribute: str = "Eyeglasses") -> tuple[Path, Path]:
    """root/with and root/without: the first `per_class` LFW photos with and without `attribute`, one
    photo per person (so that held-out faces are of people not trained on)."""
    source = shared_data("lfw")
    lines = (source / "list_attr_celeba.txt").read_text().splitlines()
    column = lines[1].split().index(attribute) + 1
    chosen: dict[str, list[str]] = {"with": [], "without": []}
    people: set[str] = set()
    for line in lines[2:]:
        parts = line.split()
        person = parts[0].rsplit("_", 1)[0]
        key = "with" if parts[column] == "1" else "without"
        if person in people or len(chosen[key]) >= per_class:
            continue
        people.add(person)
        chosen[key].append(parts[0])
    folders = []
    for key, files in chosen.items():
        folder = root / key
        folder.mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copyfile(source / "images" / name, folder / name)
        folders.append(folder)
    return folders[0], folders[1]


def astronaut_folders(root: Path, per_class: int, astronaut: np.ndarray, face: Face) -> tuple[Path, Path]:
    """root/with (dark glasses drawn on) and root/without: `per_class` varied copies each."""
    from tests.trainer.conftest import _variant, _with_glasses

    rng = np.random.default_rng(11)
    glasses = _with_glasses(astronaut, face)
    folders = []
    for key, image in (("with", glasses), ("without", astronaut)):
        folder = root / key
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            Image.fromarray(_variant(image, rng)).save(folder / f"{index:02d}.jpg", quality=90)
        folders.append(folder)
    return folders[0], folders[1]
