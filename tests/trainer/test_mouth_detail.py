"""A soft patch where a mouth was edited: the masks (trainer.data.mouth_detail_masks), the training term
(trainer.losses.soft_mouth_penalty), the measure (trainer.measures.mouth_detail_ratio) and `evaluate`'s
report of it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from diat_studio.core.alignment import CanonicalTemplate, align_face
from diat_studio.core.regions import Polygon
from trainer.data import mouth_detail_masks, to_tensor
from trainer.losses import MOUTH_DETAIL_RATIO, luma_detail, soft_mouth_penalty
from trainer.measures import mouth_detail_ratio


@pytest.fixture(scope="module")
def face(astronaut, astronaut_face) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut's 128 px crop (a sharp photo, her mouth open in a smile) and its landmarks."""
    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    return aligned.crop, aligned.to_crop(astronaut_face.landmarks)


def _soften(crop: np.ndarray, mouth: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """The crop with only its mouth blurred (what a smearing editor pastes)."""
    blurred = cv2.GaussianBlur(crop, (0, 0), sigma)
    return np.where(mouth[..., None] > 0, blurred, crop)


def test_the_masks_are_the_mouth_and_a_ring_of_skin_around_it(face) -> None:
    _, marks = face
    mouths, rings = mouth_detail_masks(marks[None], 128)
    mouth, ring = mouths[0, 0] > 0, rings[0, 0] > 0
    lips = Polygon.from_array(marks[48:60]).fill(128, 128) > 0
    assert (lips & ~mouth).sum() == 0 and mouth.sum() > lips.sum()  # the lips, grown
    assert not (mouth & ring).any() and ring.sum() > mouth.sum()  # apart, and wider
    rows, cols = np.nonzero(ring)
    centre = marks[48:60].mean(axis=0)
    assert rows.min() < centre[1] < rows.max() and cols.min() < centre[0] < cols.max()  # all around it
    assert ring[: int(marks[30, 1])].sum() == 0  # below the tip of the nose
    assert mouth_detail_masks(np.zeros((0, 68, 2)), 128)[0].shape == (0, 1, 128, 128)


def test_a_real_mouth_is_finer_than_its_skin_and_a_smeared_one_is_not(face) -> None:
    """On a real photo: the mouth's ratio is above the floor, a blurred mouth's far below; the measure and
    the training term read the same detail; nothing to read is None."""
    crop, marks = face
    mouths, rings = mouth_detail_masks(marks[None], 128)
    mouth, ring = mouths[0, 0], rings[0, 0]
    own = mouth_detail_ratio(crop, crop, mouth, ring)
    smeared = mouth_detail_ratio(_soften(crop, mouth), crop, mouth, ring)
    assert own is not None and smeared is not None
    assert own > MOUTH_DETAIL_RATIO and smeared < 0.6 * own
    detail = luma_detail(to_tensor(crop[None]))[0, 0].numpy() * 127.5  # in grey levels
    numpy_own = mouth_detail_ratio(crop, crop, mouth, ring)
    torch_own = detail[mouth > 0].mean() / detail[ring > 0].mean()
    assert torch_own == pytest.approx(numpy_own, rel=0.02)
    assert mouth_detail_ratio(crop, crop, np.zeros_like(mouth), ring) is None
    flat = np.full_like(crop, 128)
    assert mouth_detail_ratio(crop, flat, mouth, ring) is None  # skin without any detail: no measure


def test_soft_mouth_penalty_counts_a_smeared_mouth_and_pulls_its_detail_back(face) -> None:
    crop, marks = face
    mouths, rings = (torch.from_numpy(m) for m in mouth_detail_masks(marks[None], 128))
    source = to_tensor(crop[None])
    assert soft_mouth_penalty(source, source, mouths, rings).item() == 0.0  # the photo's own mouth
    smeared = to_tensor(_soften(crop, mouths[0, 0].numpy())[None]).requires_grad_(True)
    penalty = soft_mouth_penalty(smeared, source, mouths, rings)
    assert penalty.item() > 0.005
    assert soft_mouth_penalty(smeared, source, mouths, torch.zeros_like(rings)).item() == 0.0
    assert soft_mouth_penalty(smeared, source, mouths, rings, ratio=0.1).item() == 0.0
    penalty.backward()
    assert smeared.grad is not None
    step = smeared.detach() - 50.0 * smeared.grad  # a step down the gradient sharpens the mouth
    assert soft_mouth_penalty(step, source, mouths, rings).item() < penalty.item()
    near = cv2.dilate(mouths[0, 0].numpy(), np.ones((7, 7), np.uint8)) > 0  # the detail's 3 px reach
    moved = smeared.grad[0].abs().sum(0).numpy() > 0
    assert moved[mouths[0, 0].numpy() > 0].mean() > 0.5 and not (moved & ~near).any()  # only the mouth


def test_evaluate_reports_soft_mouths_against_real_ones(
    evaluator: Path, tmp_path: Path, dataset_dir: Path
) -> None:
    """Through `evaluate`: a mouth edit that flattens the mouth to one colour is softer than the real
    mouths of the set; one that only shifts its colour is not. An eye edit has no such measure."""
    from diat_studio.core.manifest import ModelManifest
    from diat_studio.core.regions import RegionKind
    from tests.onnx_fixtures import model_folder
    from trainer.evaluate import EvaluationSizes, evaluate_model

    sizes = EvaluationSizes(
        two_sample_steps=0, grey_faces=0, already_target=0, grid_faces=0, occluded_faces=0
    )
    keys = ("mouth_detail_ratio", "mouth_detail_ratio_real", "soft_mouth_faces")
    reports = {}
    for name, options in (
        ("shift", {"gain": (1.0, 1.0, 1.0), "bias": (0.1, 0.0, 0.0)}),
        ("flatten", {"gain": (0.0,) * 3}),
    ):
        folder = model_folder(
            tmp_path / name, "mouth", "local", RegionKind.MOUTH, crop_size=64, with_enhancer=False, **options
        )
        replace(ModelManifest.load(folder), attribute="Eyeglasses", direction="remove").save(folder)
        reports[name] = evaluate_model(folder, dataset_dir, evaluator, update_manifest=False, sizes=sizes)
    shift, flatten = (reports[name]["metrics"] for name in ("shift", "flatten"))
    assert all(key in shift and key in flatten for key in keys)
    assert shift["mouth_detail_ratio_real"] == flatten["mouth_detail_ratio_real"] > 1.0
    assert flatten["mouth_detail_ratio"] < 0.5 * shift["mouth_detail_ratio"]
    assert flatten["soft_mouth_faces"] > 0.8 and shift["soft_mouth_faces"] < flatten["soft_mouth_faces"]

    eyes = model_folder(
        tmp_path / "eyes", "eyes", "local", RegionKind.EYES, crop_size=64, with_enhancer=False
    )
    replace(ModelManifest.load(eyes), attribute="Eyeglasses", direction="remove").save(eyes)
    metrics = evaluate_model(eyes, dataset_dir, evaluator, update_manifest=False, sizes=sizes)["metrics"]
    assert not any(key in metrics for key in keys)
