"""Colour helpers: is a photo grey, make an image grey like one, and how far two images differ in colour.

The edit pipeline keeps grey photos grey with these (a model trained on colour faces paints colour into a
black-and-white photo otherwise), and the trainer's evaluation measures colour drift with the same code.

- `is_grey`: the 99th percentile of each pixel's channel spread (max − min of R, G, B) is at most
  `GREY_TOLERANCE` (3 levels of 255), so JPEG chroma noise in a black-and-white photo still counts as grey
  while any real colour photo (skin alone spreads 20+ levels) does not.
- `to_grey_like`: Rec. 601 luma (0.299 R + 0.587 G + 0.114 B), rounded, replicated to three channels.
- `mean_delta_e`: CIE76 ΔE (Euclidean distance in CIELAB) on an exact sRGB → XYZ (D65) → L*a*b* conversion
  in float64 (our own, not OpenCV's 8-bit Lab), averaged over a mask. ΔE ≈ 1 is the smallest difference
  people notice side by side; above 10 is a clearly different colour.
"""

from __future__ import annotations

import numpy as np

#: Largest 99th-percentile channel spread (in 0..255 levels) that still counts as a grey image.
GREY_TOLERANCE = 3.0
#: The percentile of the per-pixel channel spread that `is_grey` compares with the tolerance.
GREY_PERCENTILE = 99.0

_REC601 = np.array([0.299, 0.587, 0.114])
# sRGB (linear) → XYZ, D65 white (IEC 61966-2-1).
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_D65_WHITE = _RGB_TO_XYZ.sum(axis=1)  # the XYZ of linear RGB (1, 1, 1): (0.95047, 1.0, 1.08883)


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim < 3 or rgb.shape[-1] != 3:
        raise ValueError(f"expected …×H×W×3 RGB pixels, got shape {rgb.shape}")
    return rgb


def channel_spread(rgb: np.ndarray) -> np.ndarray:
    """Per pixel max − min of the three channels (int16, 0 for a grey pixel)."""
    rgb = _check_rgb(rgb).astype(np.int16)
    return rgb.max(axis=-1) - rgb.min(axis=-1)


def grey_spread(
    rgb: np.ndarray, mask: np.ndarray | None = None, percentile: float = GREY_PERCENTILE
) -> float:
    """The `percentile`-th percentile of the channel spread over the pixels (where `mask` > 0, if given)."""
    spread = channel_spread(rgb)
    if mask is not None:
        spread = spread[np.broadcast_to(np.asarray(mask) > 0, spread.shape)]
    if spread.size == 0:
        return 0.0
    return float(np.percentile(spread, percentile))


def is_grey(rgb_uint8: np.ndarray, tolerance: float = GREY_TOLERANCE, mask: np.ndarray | None = None) -> bool:
    """True when the image (or the pixels where `mask` > 0) is black and white, up to JPEG noise."""
    return grey_spread(rgb_uint8, mask) <= tolerance


def to_grey_like(rgb: np.ndarray) -> np.ndarray:
    """…×H×W×3 RGB → the same shape, uint8, each channel the Rec. 601 luma of the pixel."""
    rgb = _check_rgb(rgb)
    luma = np.clip(np.rint(rgb.astype(np.float64) @ _REC601), 0, 255).astype(np.uint8)
    return np.repeat(luma[..., None], 3, axis=-1)


def keep_grey(inputs: np.ndarray, outputs: np.ndarray, tolerance: float = GREY_TOLERANCE) -> np.ndarray:
    """Grey in → grey out: `outputs` (N×H×W×3 uint8) with every face whose input crop is grey made grey.

    Faces whose input has colour are returned unchanged (the same array when no face is grey).
    """
    grey = [i for i in range(len(inputs)) if is_grey(inputs[i], tolerance)]
    if not grey:
        return outputs
    result = np.array(outputs, copy=True)
    result[grey] = to_grey_like(result[grey])
    return result


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """…×3 sRGB uint8 (or floats in 0..255) → float64 CIELAB (L* 0..100), D65 white."""
    unit = _check_rgb(rgb).astype(np.float64) / 255.0
    linear = np.where(unit <= 0.04045, unit / 12.92, ((unit + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _D65_WHITE
    epsilon, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = np.where(xyz > epsilon, np.cbrt(xyz), (kappa * xyz + 16.0) / 116.0)
    return np.stack(
        [116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], axis=-1
    )


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel CIE76 ΔE between two RGB images of the same shape."""
    if np.shape(a) != np.shape(b):
        raise ValueError(f"images differ in shape: {np.shape(a)} and {np.shape(b)}")
    return np.linalg.norm(srgb_to_lab(a) - srgb_to_lab(b), axis=-1)


def mean_delta_e(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean CIE76 ΔE between two uint8 RGB images, weighted by `mask` (bool or soft 0..1, …×H×W).

    With no mask every pixel counts; an empty mask gives 0.0.
    """
    difference = delta_e(a, b)
    if mask is None:
        return float(difference.mean())
    weight = np.broadcast_to(np.asarray(mask, np.float64), difference.shape)
    total = float(weight.sum())
    return float((difference * weight).sum() / total) if total > 0 else 0.0
