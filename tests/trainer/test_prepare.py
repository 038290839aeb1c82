from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import shared_data
from tests.trainer.conftest import CROP, PER_CLASS, custom_layout_config
from trainer.data import PreparedDataset
from trainer.prepare import PrepareConfig, PrepareError, prepare_dataset


def test_custom_layout(dataset_dir: Path) -> None:
    info = json.loads((dataset_dir / "prepare.json").read_text())
    assert info["photos"] == 2 * PER_CLASS + 2
    assert info["aligned"] == 2 * PER_CLASS
    # the blank image and the text file are reported with their reasons, never silently dropped
    failures = {item["file"]: item["reason"] for item in info["failures"]}
    assert failures["without/blank.png"] == "no face found"
    assert failures["with/not-a-photo.jpg"].startswith("unreadable")
    assert info["split"]["seed"] == 0 and info["split"]["heldout"] + info["split"]["train"] == 2 * PER_CLASS
    dataset = PreparedDataset.open(dataset_dir)
    assert dataset.crops.shape == (2 * PER_CLASS, CROP, CROP, 3) and dataset.crops.dtype == np.uint8
    assert dataset.template.size == CROP
    assert set(dataset.labels) == {"Eyeglasses"}
    assert len(dataset.indices("all", "Eyeglasses", 1)) == PER_CLASS
    # crops are aligned: every face's eyes sit on the template's eye line
    eyes_y = dataset.landmarks[:, 36:48, 1].mean(axis=1)
    assert np.abs(eyes_y - 0.40 * CROP).max() < 0.05 * CROP


def test_split_is_fixed_by_the_seed(face_photos: Path, tmp_path: Path, dataset_dir: Path) -> None:
    prepare_dataset(custom_layout_config(face_photos, tmp_path / "again"))

    def splits(folder: Path) -> list[str]:
        with open(folder / "labels.csv", newline="") as handle:
            return [row["split"] for row in csv.DictReader(handle)]

    assert splits(tmp_path / "again") == splits(dataset_dir)


def test_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match=r"list_attr_celeba\.txt"):
        prepare_dataset(PrepareConfig(str(tmp_path), str(tmp_path / "o"), layout="celeba"))
    with pytest.raises(PrepareError, match=r"with/ and without/"):
        prepare_dataset(PrepareConfig(str(tmp_path), str(tmp_path / "o"), layout="custom"))


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("layout", "folder", "attribute"), [("celeba", "celeba10k", "Eyeglasses"), ("utkface", "utkface", "Male")]
)
def test_real_layouts(tmp_path: Path, layout: str, folder: str, attribute: str) -> None:
    source = shared_data(folder)
    summary = prepare_dataset(
        PrepareConfig(str(source), str(tmp_path / "d"), layout=layout, limit=40, workers=2)
    )
    assert summary["photos"] == 40
    assert summary["aligned"] + summary["not_aligned"] == 40
    assert summary["aligned"] >= 36
    dataset = PreparedDataset.open(tmp_path / "d")
    assert attribute in dataset.labels and dataset.crops.shape[1:] == (128, 128, 3)
    assert "non-commercial" in dataset.licence
