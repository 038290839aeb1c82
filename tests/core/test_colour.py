from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from diat_studio.core.colour import (
    GREY_TOLERANCE,
    channel_spread,
    delta_e,
    is_grey,
    keep_grey,
    mean_delta_e,
    srgb_to_lab,
    to_grey_like,
)


def scanned_grey(rgb: np.ndarray) -> np.ndarray:
    """A black-and-white photo as scanners and phones save it: ±1 level of noise per channel, then JPEG."""
    noise = np.random.default_rng(0).integers(-1, 2, rgb.shape)
    noisy = np.clip(to_grey_like(rgb).astype(int) + noise, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, "JPEG", quality=95, subsampling=0)  # 4:4:4 keeps the chroma noise
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def test_grey_and_colour_photos(astronaut: np.ndarray) -> None:
    grey = to_grey_like(astronaut)
    assert grey.dtype == np.uint8 and grey.shape == astronaut.shape
    assert channel_spread(grey).max() == 0 and is_grey(grey)
    assert not is_grey(astronaut)
    # a black-and-white photo with chroma noise, saved as a colour JPEG, is still grey
    noisy = scanned_grey(astronaut)
    assert channel_spread(noisy).max() > GREY_TOLERANCE and is_grey(noisy)  # a few pixels stray further
    # a faint tint (sepia-like) is colour
    tinted = np.clip(grey.astype(int) + np.array([8, 0, -8]), 0, 255).astype(np.uint8)
    assert not is_grey(tinted)
    # a mask restricts the test to its pixels
    half = grey.copy()
    half[:, 256:] = astronaut[:, 256:]
    mask = np.zeros(half.shape[:2], bool)
    mask[:, :256] = True
    assert is_grey(half, mask=mask) and not is_grey(half)
    assert is_grey(tinted, tolerance=20)


def test_to_grey_like_is_rec601_luma() -> None:
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]]], np.uint8)
    expected = np.rint(pixels.astype(float) @ [0.299, 0.587, 0.114])
    assert np.array_equal(to_grey_like(pixels)[..., 0], expected)
    # OpenCV's RGB2GRAY uses the same weights (fixed point): at most one level apart
    opencv = cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY)
    assert np.abs(to_grey_like(pixels)[..., 1].astype(int) - opencv).max() <= 1


def test_keep_grey_changes_only_grey_faces(astronaut: np.ndarray) -> None:
    inputs = np.stack([astronaut[:128, :128], to_grey_like(astronaut[:128, :128])])
    outputs = np.stack([astronaut[128:256, 128:256], astronaut[128:256, 128:256]])
    kept = keep_grey(inputs, outputs)
    assert np.array_equal(kept[0], outputs[0]) and is_grey(kept[1]) and channel_spread(kept[1]).max() == 0
    colour_only = outputs[:1]
    assert keep_grey(inputs[:1], colour_only) is colour_only  # no grey face: nothing copied or changed


def test_lab_reference_values() -> None:
    pixels = np.array([[[255, 255, 255], [255, 0, 0], [119, 119, 119]]], np.uint8)
    white, red, grey = srgb_to_lab(pixels)[0]
    assert np.allclose(white, [100, 0, 0], atol=1e-3)
    assert np.allclose(red, [53.2408, 80.0925, 67.2032], atol=1e-3)  # the textbook sRGB red
    assert np.allclose(grey[1:], 0, atol=1e-3) and 49 < grey[0] < 51


def test_mean_delta_e_over_a_mask() -> None:
    a = np.full((10, 10, 3), 128, np.uint8)
    b = a.copy()
    b[:5] = (255, 0, 0)
    difference = delta_e(a, b)
    assert difference[5:].max() == 0 and difference[:5].min() > 50
    inside = np.zeros((10, 10), bool)
    inside[:5] = True
    assert mean_delta_e(a, b, ~inside) == 0.0
    assert mean_delta_e(a, b, inside) == pytest.approx(difference[0, 0])
    assert mean_delta_e(a, b) == pytest.approx(difference[0, 0] / 2)
    soft = np.where(inside, 0.5, 0.0)
    assert mean_delta_e(a, b, soft) == pytest.approx(difference[0, 0])
    assert mean_delta_e(a, b, np.zeros((10, 10))) == 0.0
    # one level of difference is far below what anyone sees
    assert mean_delta_e(a, a + 1) < 1.0
    with pytest.raises(ValueError):
        delta_e(a, b[:5])
