"""The evaluation's measures (trainer.measures) on small real-face crops cut from the astronaut photo."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from diat_studio.core.colour import to_grey_like
from trainer.measures import (
    blur_inside,
    blur_sigma,
    composite,
    faded_lips_fraction,
    green_fraction,
    grey_fraction,
    lip_warmth_shift,
    mean_delta_e_faces,
    outer_feather_change,
    paled_lips_fraction,
    random_rows,
    raw_outside_change,
    success_over_blur_points,
    target_rate,
    two_sample_accuracies,
    two_sample_accuracy,
)

SIZE = 48
STEPS = 80


def face_crops(photo: np.ndarray, count: int, size: int = SIZE, seed: int = 0) -> np.ndarray:
    """Jittered crops around the face (rotation, scale, shift): one distribution of real images."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        matrix = cv2.getRotationMatrix2D(
            (200 + rng.uniform(-40, 40), 180 + rng.uniform(-40, 40)),
            rng.uniform(-10, 10),
            rng.uniform(0.8, 1.2),
        )
        warped = cv2.warpAffine(photo, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
        y, x = rng.integers(60, 200, 2)
        out.append(cv2.resize(warped[y : y + 200, x : x + 200], (size, size), interpolation=cv2.INTER_AREA))
    return np.stack(out)


@pytest.fixture(scope="module")
def crops(astronaut: np.ndarray) -> np.ndarray:
    return face_crops(astronaut, 96)


def test_two_sample_test_cannot_tell_one_distribution_from_itself(crops: np.ndarray) -> None:
    accuracy = two_sample_accuracy(crops[:48], crops[48:], steps=STEPS, seed=0)
    assert accuracy is not None and abs(accuracy - 0.5) <= 0.2


@pytest.mark.parametrize("change", ["blur", "tint"])
def test_two_sample_test_tells_trivially_different_sets_apart(crops: np.ndarray, change: str) -> None:
    other = crops[48:]
    if change == "blur":
        other = blur_inside(other, np.ones(other.shape[:3], np.float32), sigma=3.0)
    else:
        other = np.clip(other.astype(int) + np.array([20, 0, -20]), 0, 255).astype(np.uint8)
    accuracy = two_sample_accuracy(crops[:48], other, steps=STEPS, seed=0)
    assert accuracy is not None and accuracy >= 0.9


def test_two_sample_test_details(crops: np.ndarray) -> None:
    import torch

    assert two_sample_accuracy(crops[:1], crops[1:]) is None  # nothing to hold out
    state = torch.random.get_rng_state()
    first = two_sample_accuracy(crops[:6], crops[40:50], steps=2, seed=3)
    assert torch.equal(state, torch.random.get_rng_state())  # the caller's random state is left alone
    assert first == two_sample_accuracy(crops[:6], crops[40:50], steps=2, seed=3)  # deterministic
    assert first is not None and first * 6 == round(first * 6)  # 3 + 3 faces scored (sets cut to 6)


def test_repeated_two_sample_test_is_one_classifier_per_seed(crops: np.ndarray) -> None:
    runs = two_sample_accuracies(crops[:10], crops[40:52], repeats=3, seed=5, steps=2)
    assert runs == [two_sample_accuracy(crops[:10], crops[40:52], steps=2, seed=s) for s in (5, 6, 7)]
    assert two_sample_accuracies(crops[:1], crops[1:], repeats=3) is None


def test_blur_control_only_inside_the_mask(crops: np.ndarray) -> None:
    assert blur_sigma(128) == 2.0 and blur_sigma(64) == 1.0
    masks = np.zeros(crops.shape[:3], np.float32)
    masks[:, 8:24, 8:24] = 1.0  # a 16 px square
    blurred = blur_inside(crops[:4], masks[:4])
    assert np.array_equal(blurred[:, masks[0] == 0], crops[:4, masks[0] == 0])
    assert not np.array_equal(blurred[:, 8:24, 8:24], crops[:4, 8:24, 8:24])
    inside = (blurred[:, 8:24, 8:24].astype(float), crops[:4, 8:24, 8:24].astype(float))
    assert np.abs(np.diff(inside[0], axis=2)).mean() < np.abs(np.diff(inside[1], axis=2)).mean()


def test_composite_and_colour_measures(crops: np.ndarray) -> None:
    masks = np.zeros(crops[:4].shape[:3], np.float32)
    masks[:, :, : SIZE // 2] = 1.0
    tinted = np.clip(crops[:4].astype(int) + np.array([30, 0, -30]), 0, 255).astype(np.uint8)
    edited = composite(crops[:4], tinted, masks)
    assert np.array_equal(edited[:, :, SIZE // 2 :], crops[:4, :, SIZE // 2 :])
    assert np.array_equal(edited[:, :, : SIZE // 2], tinted[:, :, : SIZE // 2])
    assert mean_delta_e_faces(crops[:4], crops[:4], masks) == 0.0
    assert mean_delta_e_faces(crops[:4], edited, masks) > 10.0
    assert mean_delta_e_faces(crops[:4], edited, 1.0 - masks) == 0.0  # the change is all inside the mask
    assert grey_fraction(to_grey_like(crops[:4])) == 1.0 and grey_fraction(crops[:4]) == 0.0
    half = np.concatenate([to_grey_like(crops[:2]), crops[2:4]])
    assert grey_fraction(half) == 0.5


def test_a_patch_hidden_outside_the_mask_shows_in_the_outer_feather_measure(crops: np.ndarray) -> None:
    """A saturated patch on 1% of the crop just outside a soft mask: the mean PSNR outside hardly moves, the
    99th-percentile measures name it, in the raw output and where the feather's tail pastes a part of it."""
    crop = crops[0]
    yy, xx = np.mgrid[:SIZE, :SIZE]
    distance = np.hypot(yy - SIZE / 2, xx - SIZE / 2)
    mask = np.clip((14.0 - distance) / 6.0, 0.0, 1.0).astype(np.float32)  # 1 inside r 8, 0 beyond r 14
    output = np.clip(crop.astype(int) + 6, 0, 255).astype(np.uint8)  # a gentle change everywhere
    clean = (outer_feather_change(crop, composite(crop[None], output[None], mask[None])[0], mask),
             raw_outside_change(crop, output, mask))  # fmt: skip
    assert clean[0] <= 2.0 and clean[1] == pytest.approx(6.0, abs=0.5)
    patched = output.copy()
    ring = (distance > 12.0) & (distance < 16.0) & (yy < SIZE / 2 - 10)  # above the mask's edge
    patched[ring] = 255
    assert 0.005 < ring.mean() < 0.05
    edited = composite(crop[None], patched[None], mask[None])[0]
    assert outer_feather_change(crop, edited, mask) > 20.0
    assert raw_outside_change(crop, patched, mask) > 100.0
    assert outer_feather_change(crop, crop, np.zeros_like(mask)) == 0.0  # no feather band: nothing to say


def test_random_rows_are_drawn_not_the_first() -> None:
    rows = np.arange(100, 200)
    drawn = random_rows(rows, seed=0)
    assert sorted(drawn.tolist()) == rows.tolist() and not np.array_equal(drawn[:16], rows[:16])
    assert np.array_equal(drawn, random_rows(rows, seed=0))
    assert success_over_blur_points(0.8, 0.35) == 45.0


def test_target_rate_counts_what_the_classifier_calls_the_target_across_batches() -> None:
    class Brightness(torch.nn.Module):
        """Logit > 0 for a bright face: 'has the attribute'."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(1, 2, 3))[:, None]

    images = np.zeros((5, 8, 8, 3), np.uint8)
    images[:3] = 255  # three bright, two dark; batch 2 splits them across three batches
    assert target_rate(Brightness(), images, 1, batch=2) == 0.6
    assert target_rate(Brightness(), images, 0, batch=2) == 0.4


def test_the_green_measure_counts_mint_teeth_not_the_photos_own_green_or_a_change_outside(
    crops: np.ndarray,
) -> None:
    """Mint-green teeth painted on a quarter of the region count as that quarter; white teeth, the unedited
    photo and a green patch outside the region (m ≤ 0.5) do not; a green-lit photo keeps its own green."""
    crop = crops[0]
    mask = np.zeros((SIZE, SIZE), np.float32)
    mask[12:36, 12:36] = 1.0
    assert green_fraction(crop, crop, mask) == 0.0
    mint, white = crop.copy(), crop.copy()
    mint[12:24, 12:24] = (150, 210, 180)
    white[12:24, 12:24] = (235, 232, 220)
    assert green_fraction(crop, mint, mask) == pytest.approx(0.25)
    assert green_fraction(crop, white, mask) == 0.0
    outside = crop.copy()
    outside[:10] = (150, 210, 180)
    assert green_fraction(crop, outside, mask) == 0.0
    green_lit = np.full_like(crop, (120, 160, 120))
    assert green_fraction(green_lit, green_lit, mask) == 0.0
    assert green_fraction(crop, mint, np.zeros_like(mask)) == 0.0


def test_the_faded_lips_measure_counts_grey_and_olive_closed_mouths_against_the_photos_own_lips() -> None:
    """Where the teeth were, a closed mouth as red as the lips around it counts 0; grey lips count, and so do
    olive lips that are still redder than green (which the green measure misses); a face without a teeth
    region or without lips to read has no score."""
    crop = np.full((SIZE, SIZE, 3), (200, 150, 130), np.uint8)  # skin
    lips, teeth = np.zeros((SIZE, SIZE), np.float32), np.zeros((SIZE, SIZE), np.float32)
    lips[20:30, 10:38] = 1.0
    teeth[23:27, 14:34] = 1.0
    lips[teeth > 0] = 0.0
    crop[lips > 0] = (170, 70, 80)  # red lips
    crop[teeth > 0] = (235, 230, 220)  # white teeth
    closed = crop.copy()
    closed[teeth > 0] = (165, 72, 78)  # closed into lips of the photo's own colour
    grey, olive = crop.copy(), crop.copy()
    grey[teeth > 0] = (120, 115, 112)
    olive[teeth > 0] = (130, 120, 90)
    assert olive[24, 20, 0] > olive[24, 20, 1]  # redder than green: green_fraction sees nothing
    assert green_fraction(crop, olive, teeth) == 0.0
    assert faded_lips_fraction(crop, closed, teeth, lips) == 0.0
    assert faded_lips_fraction(crop, grey, teeth, lips) == 1.0
    assert faded_lips_fraction(crop, olive, teeth, lips) == 1.0
    half = closed.copy()
    half[23:27, 14:24] = grey[23:27, 14:24]
    assert faded_lips_fraction(crop, half, teeth, lips) == pytest.approx(0.5)
    assert faded_lips_fraction(crop, grey, np.zeros_like(teeth), lips) is None
    assert faded_lips_fraction(crop, grey, teeth, np.zeros_like(lips)) is None


def test_the_paled_lips_measure_counts_opened_lips_that_lost_their_red_wherever_they_moved() -> None:
    """Opening a mouth: the photo's lips ranked by redness against the edited region's reddest pixels.
    Lips as red as before count nothing although the lower lip moved; pale pink lips count every rank;
    one lip pale, the ranks the other cannot hold; no lips to read: None."""
    skin, red, pale, teeth = (200, 160, 140), (178, 90, 100), (205, 160, 160), (235, 235, 235)

    def face(lip: tuple[int, int, int], bands: tuple[slice, ...], open_rows: slice | None = None):
        image = np.full((24, 24, 3), skin, np.uint8)
        for band in bands:
            image[band, 6:18] = lip
        if open_rows is not None:
            image[open_rows, 7:17] = teeth
        return image

    lips = np.zeros((24, 24), np.float32)
    lips[9:12, 6:18] = 1.0
    region = np.zeros((24, 24), np.float32)
    region[4:22, 3:21] = 1.0
    crop = face(red, (slice(9, 12),))
    opened = face(red, (slice(8, 10), slice(14, 16)), slice(10, 14))
    assert paled_lips_fraction(crop, crop, lips, region) == 0.0
    assert paled_lips_fraction(crop, opened, lips, region) == 0.0
    paled = face(pale, (slice(8, 10), slice(14, 16)), slice(10, 14))
    assert paled_lips_fraction(crop, paled, lips, region) == 1.0
    half = opened.copy()
    half[14:16, 6:18] = pale  # the upper lip (24 px) still red: it holds the top 24 of the 28 ranks
    assert paled_lips_fraction(crop, half, lips, region) == pytest.approx(4 / 28)
    assert paled_lips_fraction(crop, paled, np.zeros_like(lips), region) is None
    # the warmth: as red, but bluer lips move b*; the lips as they were, or moved, do not
    assert lip_warmth_shift(crop, crop, lips, region) == 0.0
    assert lip_warmth_shift(crop, opened, lips, region) == pytest.approx(0.0, abs=1e-6)
    cooled = face((178, 90, 135), (slice(8, 10), slice(14, 16)), slice(10, 14))
    assert paled_lips_fraction(crop, cooled, lips, region) == 0.0
    assert lip_warmth_shift(crop, cooled, lips, region) > 10
    assert lip_warmth_shift(crop, paled, np.zeros_like(lips), region) is None
