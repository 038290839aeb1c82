"""A model is pasted through the mask it was trained with: the manifest's `region_margin` (the margin around
the region's landmark hull), the region's default when a manifest does not record one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.manifest import MANIFEST_FILE
from diat_studio.core.pipeline import edit_photo
from diat_studio.core.regions import REGION_MARGIN, RegionKind, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.onnx_fixtures import model_folder


def _eyes_model(root: Path, margin: float | None):
    folder = model_folder(root, "redden-eyes", "local", RegionKind.EYES, with_enhancer=False)
    if margin is not None:
        manifest = json.loads((folder / MANIFEST_FILE).read_text())
        (folder / MANIFEST_FILE).write_text(json.dumps({**manifest, "region_margin": margin}))
    return load_attribute_model(ModelRegistry([root]).get("redden-eyes"), Device.CPU)


def test_the_manifests_margin_sets_the_mask_and_the_default_stays_for_older_models(
    astronaut, astronaut_face, tmp_path: Path
) -> None:
    wide, default = 0.45, REGION_MARGIN[RegionKind.EYES]
    assert wide > default
    height, width = astronaut.shape[:2]

    def inside(margin: float) -> np.ndarray:
        polygon = region_polygon(RegionKind.EYES, astronaut_face.landmarks, margin)
        return polygon.rasterise(height, width).full(height, width) > 0

    ring = inside(wide) & ~inside(default + 0.08)  # where a glasses frame's lower rim and temples sit
    assert ring.sum() > 500
    older = edit_photo(astronaut, [astronaut_face], _eyes_model(tmp_path / "older", None))
    newer = edit_photo(astronaut, [astronaut_face], _eyes_model(tmp_path / "newer", wide))
    assert older.polygons[0] == region_polygon(RegionKind.EYES, astronaut_face.landmarks)
    assert newer.polygons[0] == region_polygon(RegionKind.EYES, astronaut_face.landmarks, wide)
    changed = lambda result: np.any(result.pixels != astronaut, axis=2)  # noqa: E731
    assert not changed(older)[ring].any()
    assert changed(newer)[ring].mean() > 0.5
    assert not changed(newer)[~inside(wide)].any()  # and still nothing outside its own polygon
