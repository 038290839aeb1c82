"""`downscale`: a prepared dataset at a smaller crop size, without detecting faces again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.data import PreparedDataset


def test_downscaled_dataset_keeps_faces_labels_and_split(dataset_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "small"
    assert main(["downscale", str(dataset_dir), str(out), "--size", "32"]) == EXIT_OK
    big, small = PreparedDataset.open(dataset_dir), PreparedDataset.open(out)
    assert small.size == 32 and small.template.size == 32 and len(small.crops) == len(big.crops)
    assert small.template.eye_distance == big.template.eye_distance
    assert np.array_equal(small.split, big.split) and small.files == big.files
    assert all(np.array_equal(small.labels[k], big.labels[k]) for k in big.labels)
    # the landmarks still sit on the canonical eye positions of the smaller template
    template_eyes = small.template.points()[36:48].reshape(2, 6, 2).mean(1)
    eyes = small.landmarks[:, 36:48].reshape(-1, 2, 6, 2).mean(2).mean(0)
    assert np.abs(eyes - template_eyes).max() < 1.5
    # each crop is the area average of the large one: 2×2 blocks
    block = np.asarray(big.crops[0], np.float32).reshape(32, 2, 32, 2, 3).mean((1, 3))
    assert np.abs(np.asarray(small.crops[0], np.float32) - block).max() <= 1.0
    assert small.info["downscaled_from"]["size"] == 64  # type: ignore[index]
    # the same developers' split at both sizes
    assert np.array_equal(small.with_dev_split(0.25).split, big.with_dev_split(0.25).split)


@pytest.mark.parametrize("size", ["8", "64", "128"])
def test_downscale_refuses_sizes_it_cannot_make(dataset_dir: Path, tmp_path: Path, size: str, capsys) -> None:
    assert main(["downscale", str(dataset_dir), str(tmp_path / "x"), "--size", size]) == EXIT_USAGE
    assert "--size must be at least 16 and below the dataset's 64 px" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_downscale_never_replaces_a_folder(dataset_dir: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["downscale", str(dataset_dir), str(out), "--size", "32"]) == EXIT_USAGE
    assert "exists" in capsys.readouterr().err and (out / "keep.txt").read_text() == "mine"
