"""The trainer prepares, trains and exports at a 256 px crop, and the app runs the result."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.pipeline import edit_photo
from diat_studio.core.regions import RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.trainer.conftest import custom_layout_config
from trainer.config import TrainConfig
from trainer.data import PreparedDataset
from trainer.export import export_model
from trainer.prepare import prepare_dataset
from trainer.runs import CONFIG_FILE, new_run_folder
from trainer.training_loop import training_loop


def test_prepare_train_export_and_edit_at_256_px(
    face_photos: Path, tmp_path: Path, astronaut, astronaut_face
) -> None:
    data = tmp_path / "data256"
    prepare_dataset(replace(custom_layout_config(face_photos, data), size=256))
    dataset = PreparedDataset.open(data)
    assert dataset.crops.shape[1:] == (256, 256, 3) and dataset.template.size == 256

    config = TrainConfig(
        stage="edit", data=str(data), attribute="Eyeglasses", direction="remove", region="eyes", steps=2,
        batch_size=2, transform_width=4, discriminator_width=4, runs_dir=str(tmp_path / "runs"),
        device="cpu", threads=1, sample_every=2, checkpoint_every=2, ema_decay=0.9,
    )  # fmt: skip
    run = new_run_folder(tmp_path / "runs", "edit", "256")
    (run / CONFIG_FILE).write_text(config.to_json())
    assert training_loop(config, run)["status"] == "done"

    export_model(run, tmp_path / "models" / "remove-eyeglasses-256")
    entry = ModelRegistry([tmp_path / "models"]).get("remove-eyeglasses-256")
    assert entry is not None and entry.available and entry.manifest.crop_size == 256
    model = load_attribute_model(entry, Device.CPU)
    result = edit_photo(astronaut, [astronaut_face], model)
    assert result.crops["original"][0].shape == (256, 256, 3)
    eyes = region_polygon(RegionKind.EYES, astronaut_face.landmarks).rasterise(512, 512, 1).full(512, 512) > 0
    assert not np.any(result.pixels != astronaut, axis=2)[~eyes].any()  # only the eye band may change
