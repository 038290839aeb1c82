"""The developers' split: training faces set aside for sweeps; held-out faces stay for final numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trainer.data import DatasetError, PreparedDataset


def test_dev_split_comes_from_training_faces_only_and_is_reproducible(dataset_dir: Path) -> None:
    dataset = PreparedDataset.open(dataset_dir)
    train, heldout = set(dataset.indices("train")), set(dataset.indices("heldout"))
    split = dataset.with_dev_split(0.3)
    dev = set(split.indices("dev"))
    assert len(dev) == round(0.3 * len(train)) and dev <= train
    assert set(split.indices("train")) == train - dev  # training no longer sees the dev faces
    assert set(split.indices("heldout")) == heldout  # the held-out split is untouched
    assert np.array_equal(dataset.split, PreparedDataset.open(dataset_dir).split)  # the original is unchanged
    assert set(PreparedDataset.open(dataset_dir).with_dev_split(0.3).indices("dev")) == dev
    assert set(dataset.with_dev_split(0.3, seed=1).indices("dev")) != dev
    assert len(dataset.with_dev_split(0.0).indices("dev")) == 0


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_dev_fraction_out_of_range_is_refused(dataset_dir: Path, fraction: float) -> None:
    with pytest.raises(DatasetError, match="dev fraction"):
        PreparedDataset.open(dataset_dir).with_dev_split(fraction)
