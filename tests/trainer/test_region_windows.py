"""The region windows and the covered region behind scripts/realism_diagnostic.py `--region-window` and
`--context`."""

from __future__ import annotations

import numpy as np
import pytest

from diat_studio.core.regions import RegionKind
from trainer.measures import two_sample_accuracy
from trainer.region_windows import COVER_LEVEL, cover_region, region_windows, window_boxes


def _landmarks(n: int, mouth_centre: float = 63.5) -> np.ndarray:
    """68 points: eyes 40 px apart (centres 43.5 and 83.5 on row 50), the mouth's 20 points around
    (mouth_centre, mouth_centre), symmetric so that their mean is exactly that point."""
    marks = np.zeros((68, 2))
    ring = np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
            np.sin(np.linspace(0, 2 * np.pi, 6, endpoint=False)),
        ],
        1,
    )
    marks[36:42] = (43.5, 50.0) + 5 * ring
    marks[42:48] = (83.5, 50.0) + 5 * ring
    mouth = np.stack(
        [
            np.cos(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
            np.sin(np.linspace(0, 2 * np.pi, 20, endpoint=False)),
        ],
        1,
    )
    marks[48:68] = (mouth_centre, mouth_centre) + np.array([18.0, 8.0]) * mouth
    return np.repeat(marks[None], n, 0)


def test_the_mouth_square_at_its_own_scale_is_the_crop_around_the_mouth() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    marks = _landmarks(3)
    np.testing.assert_allclose(window_boxes(marks, RegionKind.MOUTH), [[63.5, 63.5, 64.0]] * 3)
    windows = region_windows(images, marks, RegionKind.MOUTH, size=64)  # 1.6 × 40 px = 64 px: no resampling
    assert windows.shape == (3, 64, 64, 3) and windows.dtype == np.uint8
    np.testing.assert_array_equal(windows, images[:, 32:96, 32:96])


def test_the_eyes_square_holds_both_eyes_resized() -> None:
    images = np.zeros((1, 128, 128, 3), np.uint8)
    images[0, 48:53, 41:46] = 255  # the left eye's centre
    images[0, 48:53, 81:86] = 255  # the right eye's
    windows = region_windows(images, _landmarks(1), RegionKind.EYES, size=52)  # side 104 px, half size
    bright = np.argwhere(windows[0, :, :, 0] > 127)
    assert bright.size and set(np.unique(bright[:, 1] // 26)) == {0, 1}  # one eye in each half
    assert abs(bright[:, 0].mean() - 25.5) < 1.5  # on the window's middle row


def test_cover_region_greys_the_square_and_nothing_else() -> None:
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    before = images.copy()
    covered = cover_region(images, _landmarks(2), RegionKind.MOUTH)
    np.testing.assert_array_equal(images, before)  # the input is left as it was
    assert (covered[:, 32:96, 32:96] == COVER_LEVEL).all()
    outside = np.ones((128, 128), bool)
    outside[32:96, 32:96] = False
    np.testing.assert_array_equal(covered[:, outside], images[:, outside])


def test_regions_without_a_window_are_refused() -> None:
    with pytest.raises(ValueError, match="no region window for 'face'"):
        window_boxes(_landmarks(1), RegionKind.FACE)


def test_a_difference_inside_the_square_is_seen_by_the_window_and_not_by_the_covered_faces() -> None:
    """Two sets of 64 px noise faces that differ only by a dark patch on the mouth (its place varying a
    little): the test tells the whole faces apart, and the windows; with the square covered it cannot."""
    rng = np.random.default_rng(2)
    n = 32
    first = rng.integers(60, 200, (n, 64, 64, 3), dtype=np.uint8)
    second = rng.integers(60, 200, (n, 64, 64, 3), dtype=np.uint8)
    centres = rng.uniform(29, 35, (2, n))
    # the 128 px layout halved (pixel centres kept): eyes 20 px apart, the mouth square 32 px
    marks = [np.stack([(_landmarks(1, 2 * c + 0.5)[0] + 0.5) / 2 - 0.5 for c in row]) for row in centres]
    for image, c in zip(second, centres[1], strict=True):
        y = x = round(c)
        image[y - 3 : y + 3, x - 7 : x + 7] = 20

    def test(a: np.ndarray, b: np.ndarray) -> float:
        accuracy = two_sample_accuracy(a, b, steps=40, seed=0)
        assert accuracy is not None
        return accuracy

    mouth = RegionKind.MOUTH
    assert test(first, second) >= 0.9  # the patch is there to be seen
    assert (
        test(region_windows(first, marks[0], mouth, 32), region_windows(second, marks[1], mouth, 32)) >= 0.9
    )
    assert test(cover_region(first, marks[0], mouth), cover_region(second, marks[1], mouth)) <= 0.7
