"""The opened mouth's upper lip: its band (trainer.data.upper_lip_bands), the training term
(trainer.losses.upper_lip_penalty) and the measure (trainer.measures.upper_lip_shift)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from diat_studio.core.alignment import CanonicalTemplate
from diat_studio.core.regions import Polygon
from trainer.data import upper_lip_bands
from trainer.losses import lab, lab_ab, upper_lip_penalty
from trainer.measures import upper_lip_shift

SKIN, RED, PALE, TEETH = (200, 160, 140), (178, 90, 100), (205, 160, 160), (235, 235, 235)


def _face(upper: tuple[int, int, int], lower_rows: slice, teeth: slice | None = None) -> np.ndarray:
    """A 24 px face: the upper lip in rows 8-10 (its outer half, the band, rows 8-9), the lower lip at
    `lower_rows`, teeth between if given."""
    image = np.full((24, 24, 3), SKIN, np.uint8)
    image[8:11, 6:18] = upper
    image[lower_rows, 6:18] = RED
    if teeth is not None:
        image[teeth, 7:17] = TEETH
    return image


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0


BAND = np.zeros((24, 24), np.float32)
BAND[8:10, 6:18] = 1.0
CLOSED = _face(RED, slice(11, 14))
OPENED = _face(RED, slice(15, 18), teeth=slice(11, 15))  # the lower lip down, teeth under the upper lip
PALED = _face(PALE, slice(15, 18), teeth=slice(11, 15))  # the same, its upper lip paled


def test_lab_is_opencvs_lab_and_lab_ab_its_chroma() -> None:
    image = np.random.default_rng(4).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    reference = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    lightness, a, b = lab(_tensor(image))
    assert np.abs(lightness[0, 0].numpy() - reference[..., 0]).max() < 0.5
    assert all(torch.equal(x, y) for x, y in zip(lab_ab(_tensor(image)), (a, b), strict=True))


def test_the_upper_lip_band_is_the_upper_lips_outer_half(astronaut, astronaut_face) -> None:
    """On a real face: inside the upper lip, clear of the teeth, touching its outer edge, and about half
    of the upper lip."""
    from diat_studio.core.alignment import align_face

    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)[None]
    band = upper_lip_bands(marks, 128)[0, 0] > 0
    upper = Polygon.from_array(marks[0, [48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60]]).fill(128, 128) > 0
    assert band.sum() > 20
    assert (band & ~upper).sum() <= 0.1 * band.sum()  # the polygons' edges aside, inside the upper lip
    assert 0.3 < band.sum() / upper.sum() < 0.7
    between_lips = Polygon.from_array(marks[0, 60:68]).fill(128, 128) > 0  # the astronaut smiles: teeth
    assert between_lips.sum() > 50 and (band & between_lips).sum() <= 0.1 * band.sum()
    assert band[: int(marks[0, 48:55, 1].min()) + 1].sum() <= 0.1 * band.sum()  # not above the lip
    assert upper_lip_bands(np.zeros((0, 68, 2)), 128).shape == (0, 1, 128, 128)


def test_upper_lip_penalty_counts_a_paled_upper_lip_not_an_opened_mouth() -> None:
    """The mouth opened with the upper lip as it was counts nothing (the lower lip and teeth move under
    it); a paled upper lip counts; a change within the slack does not; no band, nothing; the term pulls
    the lip back."""
    band = torch.from_numpy(BAND)[None, None]
    closed = _tensor(CLOSED)
    assert upper_lip_penalty(closed, closed, band).item() == 0.0
    assert upper_lip_penalty(_tensor(OPENED), closed, band).item() == 0.0
    paled = _tensor(PALED)
    assert upper_lip_penalty(paled, closed, band).item() > 0.2  # L* +~12, a* −~20, b* …
    slightly = _tensor(_face((180, 93, 102), slice(15, 18), teeth=slice(11, 15)))
    assert upper_lip_penalty(slightly, closed, band).item() == 0.0
    assert upper_lip_penalty(paled, closed, torch.zeros_like(band)).item() == 0.0
    assert upper_lip_penalty(paled, closed, band, margin=100).item() == 0.0
    paled.requires_grad_(True)
    upper_lip_penalty(paled, closed, band).backward()
    assert paled.grad is not None and paled.grad.abs().sum() > 0


def test_the_upper_lip_measure_is_the_bands_colour_change() -> None:
    assert upper_lip_shift(CLOSED, CLOSED, BAND) == 0.0
    assert upper_lip_shift(CLOSED, OPENED, BAND) == pytest.approx(0.0, abs=1e-6)
    assert upper_lip_shift(CLOSED, PALED, BAND) > 15
    assert upper_lip_shift(CLOSED, PALED, np.zeros_like(BAND)) is None


def test_evaluate_reports_the_opened_lips_measures_of_a_mouth_opening_model(
    evaluator: Path, tmp_path: Path, dataset_dir: Path
) -> None:
    """Through `evaluate` as the card gets them: a model that reddens the mouth loses none of the lips'
    redness ranks but moves the upper lip's colour; one that greys it loses the ranks and moves the
    upper lip too. A closing model has no such measures."""
    from dataclasses import replace

    from diat_studio.core.manifest import ModelManifest
    from diat_studio.core.regions import RegionKind
    from tests.onnx_fixtures import model_folder
    from trainer.evaluate import EvaluationSizes, evaluate_model

    sizes = EvaluationSizes(two_sample_steps=4, grey_faces=2, already_target=2, grid_faces=0)
    reports = {}
    for name, options in (("redden", {}), ("grey", {"gain": (0.2, 0.2, 0.2), "bias": (0.4, 0.4, 0.4)})):
        folder = model_folder(
            tmp_path / name, "mouth", "local", RegionKind.MOUTH, crop_size=64, with_enhancer=False, **options
        )
        replace(ModelManifest.load(folder), attribute="Eyeglasses", direction="add").save(folder)
        reports[name] = evaluate_model(folder, dataset_dir, evaluator, update_manifest=False, sizes=sizes)
    redden, grey = (reports[name]["metrics"] for name in ("redden", "grey"))
    keys = ("paled_lips_ranks", "lip_warmth_shift", "upper_lip_delta_e", "upper_lip_faces_over_5")
    assert all(key in redden and key in grey for key in keys)
    assert redden["paled_lips_ranks"] == 0.0 and redden["upper_lip_delta_e"] > 10
    assert grey["paled_lips_ranks"] > 0.5 and grey["upper_lip_delta_e"] > 10
    assert grey["upper_lip_faces_over_5"] == redden["upper_lip_faces_over_5"] == 1.0

    closing = model_folder(
        tmp_path / "close", "mouth", "local", RegionKind.MOUTH, crop_size=64, with_enhancer=False
    )
    replace(ModelManifest.load(closing), attribute="Eyeglasses", direction="remove").save(closing)
    metrics = evaluate_model(closing, dataset_dir, evaluator, update_manifest=False, sizes=sizes)["metrics"]
    assert not any(key in metrics for key in keys)
