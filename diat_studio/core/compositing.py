"""Detail-preserving paste-back: an edited crop back into the full-resolution photo.

The models see and return a small canonical crop (128 px); a face in a photo is often 300-2,000 px wide.
Pasting the edited crop itself back enlarges it up to 15× — a soft patch on a sharp photo, with a visible
oval and colour fringes where the blur meets the sharp surroundings. Instead, with C the model's input
crop, E its output and O the photo:

    out = O + w · (E − C)↑ + w · r · (C↑ − O)

- `(E − C)↑`, the *change* the model made, enlarged to the photo: smooth at the photo's scale, so O's own
  detail (pores, hair, grain, JPEG noise — everything finer than the crop's pixels) stays where the edit
  did not change the structure, and a no-op model leaves the photo exactly as it was. Only the change
  inside the polygon counts: a local editor's raw output outside its region is anything (it is trained on
  x + m ⊙ Δ), so it is dropped before the bands are split, and the smooth band is a blur over the polygon
  alone (normalised convolution) — else a pattern outside shows as a line along the mask's edge.
- `r`, where the edit changed the *structure* (edges that the input had and the output has not, or the
  reverse, or a large change of brightness) — e.g. the frames of removed eyeglasses, an opened mouth: there
  the photo's detail is replaced by the model's content `C↑ + (E − C)↑ = E↑`, so removed frames do not come
  back as edges and the photo's closed lips do not ghost over the opened mouth. Measured on the crop.
- `w`, the mask: the region's polygon with a feathered edge, computed on the crop, split in two bands
  (a pyramid blend of two levels): the change's fine part uses the mask's own feather, its smooth part
  (colour and brightness shifts) a wider ramp inside the polygon, so a face-wide tint fades out gently
  and no oval shows; a binary fill of the polygon at full resolution gates both, so nothing outside the
  polygon the user sees ever changes, bit for bit.
- Grey in → grey out: for a grey input crop only the change of luminance is pasted, so the photo's channel
  spread is unchanged.

All full-resolution work happens inside the polygon's bounding box: one enlargement of the change (cubic
to a quarter of the photo's resolution, then linear — 3× faster than one cubic warp and as smooth), one
saturating add, and the structure blend only inside the box where `r` > 0. `detail=False` pastes the
enlarged output crop itself, as before (for comparisons).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from diat_studio.core.alignment import AlignedFace, invert_affine
from diat_studio.core.colour import is_grey
from diat_studio.core.regions import Polygon

_REC601 = np.array([0.299, 0.587, 0.114], np.float32)
#: Upscaling factor from which the change is enlarged in two steps (cubic to 1/4 resolution, then linear).
_TWO_STEP_FROM = 6.0


@dataclass(frozen=True)
class DetailSettings:
    """Where an edit counts as a change of structure (the photo's detail is then not kept)."""

    gradient_change: tuple[float, float] = (0.55, 1.0)
    """Relative change of the luma gradient, |g_out − g_in| / (mean of the two + 8 levels per crop pixel):
    from no effect to full effect. Relative, so that a change of contrast or colour (a gradient scaled by
    0.7) keeps the detail while an edge that appears or disappears (a ratio near 1 or above) does not."""
    brightness_change: tuple[float, float] = (60.0, 120.0)
    """Luma change (levels): from no effect to full effect (only extreme changes count by themselves)."""
    wide_feather: float = 2.5
    """The smooth band's ramp, in multiples of the mask's feather (inside the polygon)."""
    smooth_sigma: float = 3.0
    """Gaussian σ (crop pixels at 128 px) that splits the change into its fine and smooth bands."""


DEFAULT_DETAIL = DetailSettings()


def paste_edit(
    out: np.ndarray,
    aligned: AlignedFace,
    edited_crop: np.ndarray,
    polygon: Polygon,
    feather: float,
    *,
    strength: float = 1.0,
    detail: bool = True,
    settings: DetailSettings = DEFAULT_DETAIL,
) -> None:
    """Paste one face's edit into `out` (H×W×3 uint8, modified in place) through `polygon` (image
    coordinates) with an edge feathered over `feather` image pixels, at `strength` (0..1)."""
    height, width = out.shape[:2]
    box = _box(polygon, width, height)
    if box is None or strength <= 0:
        return
    x0, y0, x1, y1 = box
    n = aligned.template.size
    original = aligned.crop.astype(np.float32)
    edited = np.asarray(edited_crop).astype(np.float32)
    crop_polygon = polygon.transformed(aligned.matrix)
    inside, fine, smooth = _crop_masks(crop_polygon, n, feather * aligned.scale, settings)
    fine *= np.float32(strength)
    smooth *= np.float32(strength)

    grey = is_grey(aligned.crop)
    # What the model wrote outside the polygon is never shown, and a local editor's raw output there is
    # anything (it is trained on x + m ⊙ Δ): it must not reach the region through the blurs below.
    change = (edited - original) * inside[..., None]
    if grey:  # only the luminance changes: the photo's channel spread stays as it was
        change = np.repeat((change @ _REC601)[..., None], 3, axis=-1)
    sigma = settings.smooth_sigma * n / 128
    smooth_change = _blur_inside(change, inside, sigma)
    field = fine[..., None] * (change - smooth_change) + smooth[..., None] * smooth_change
    replace = fine * _structure_change(original, original + change, settings) if detail else fine.copy()

    # crop → box-local image coordinates
    back = invert_affine(aligned.matrix)
    back[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    gate = np.zeros((size[1], size[0]), np.uint8)
    local = (polygon.as_array() - (x0, y0)) * 16
    cv2.fillPoly(gate, [np.round(local).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    region = out[y0:y1, x0:x1]

    if replace.max() > 1e-3:
        _blend_structure(region, gate, aligned, replace, back, grey)
    enlarged = _enlarge(field, back, size, aligned.scale)
    cv2.add(region, enlarged, dst=region, mask=gate, dtype=cv2.CV_8U)


def _box(polygon: Polygon, width: int, height: int) -> tuple[int, int, int, int] | None:
    x_min, y_min, x_max, y_max = polygon.bounds()
    x0, y0 = max(int(np.floor(x_min)) - 1, 0), max(int(np.floor(y_min)) - 1, 0)
    x1, y1 = min(int(np.ceil(x_max)) + 2, width), min(int(np.ceil(y_max)) + 2, height)
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _crop_masks(
    polygon: Polygon, n: int, feather: float, settings: DetailSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(inside, fine, smooth) n×n masks of the polygon in crop coordinates: its binary fill, and smoothstep
    ramps over `feather` and `wide_feather`× that many crop pixels of the exact distance to the edge, so that
    the enlarged mask fades out at the polygon without a pixel staircase (the full-resolution gate cuts the
    rest)."""
    wide = max(settings.wide_feather * feather, 0.75)
    distance = polygon.edge_distance(n, n, reach=max(feather, wide))
    return (
        polygon.fill(n, n).astype(np.float32),
        _smoothstep(distance / max(feather, 0.75)),
        _smoothstep(distance / wide),
    )


def _blur_inside(change: np.ndarray, inside: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of `change` over the polygon only (normalised convolution): near the edge it averages
    the region's own change instead of fading towards the zeros outside; 0 outside the polygon."""
    blurred = cv2.GaussianBlur(change * inside[..., None], (0, 0), sigma)
    weight = cv2.GaussianBlur(inside, (0, 0), sigma)
    averaged = blurred / np.maximum(weight, 1e-6)[..., None]
    return np.where(inside[..., None] > 0, averaged, 0.0).astype(np.float32)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    ramp = np.clip(x, 0.0, 1.0).astype(np.float32)
    return ramp * ramp * (3.0 - 2.0 * ramp)


def _ramp(value: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    low, high = limits
    return _smoothstep((value - low) / max(high - low, 1e-6))


def _structure_change(original: np.ndarray, edited: np.ndarray, settings: DetailSettings) -> np.ndarray:
    """0..1 per crop pixel: 1 where the edit changed the structure (gained or lost edges, or a large
    brightness change), grown by a pixel and softened so that the photo's detail fades out around it."""
    luma_in, luma_out = original @ _REC601, edited @ _REC601
    gradient_in, gradient_out = _gradient(luma_in), _gradient(luma_out)
    relative = np.abs(gradient_out - gradient_in) / (0.5 * (gradient_out + gradient_in) + 8.0)
    change = np.maximum(
        _ramp(relative, settings.gradient_change),
        _ramp(np.abs(luma_out - luma_in), settings.brightness_change),
    )
    change = cv2.dilate(change, np.ones((3, 3), np.uint8))
    return np.clip(cv2.GaussianBlur(change, (0, 0), 1.0), 0.0, 1.0)


def _gradient(luma: np.ndarray) -> np.ndarray:
    luma = cv2.GaussianBlur(luma, (0, 0), 0.7)
    gx = cv2.Sobel(luma, cv2.CV_32F, 1, 0, ksize=3) / 4
    gy = cv2.Sobel(luma, cv2.CV_32F, 0, 1, ksize=3) / 4
    return cv2.magnitude(gx, gy)


def _enlarge(
    field: np.ndarray,
    back: np.ndarray,
    size: tuple[int, int],
    scale: float,
    border: int = cv2.BORDER_CONSTANT,
) -> np.ndarray:
    """A crop-space image warped into the box (same dtype): in two steps for large enlargements."""
    width, height = size
    if 1.0 / max(scale, 1e-9) < _TWO_STEP_FROM:
        flags = cv2.INTER_CUBIC if scale < 1.0 else cv2.INTER_LINEAR
        return cv2.warpAffine(field, back, size, flags=flags, borderMode=border)
    # cv2.resize maps fine pixel x to coarse (x + 0.5)·cw/w − 0.5: the coarse grid is placed to match
    coarse_w, coarse_h = -(-width // 4), -(-height // 4)
    sx, sy = coarse_w / width, coarse_h / height
    to_coarse = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5]])
    coarse = cv2.warpAffine(
        field, _compose(to_coarse, back), (coarse_w, coarse_h), flags=cv2.INTER_CUBIC, borderMode=border
    )
    return cv2.resize(coarse, (width, height), interpolation=cv2.INTER_LINEAR)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    return (np.vstack([outer, [0.0, 0.0, 1.0]]) @ np.vstack([inner, [0.0, 0.0, 1.0]]))[:2]


def _blend_structure(
    region: np.ndarray,
    gate: np.ndarray,
    aligned: AlignedFace,
    replace: np.ndarray,
    back: np.ndarray,
    grey: bool,
) -> None:
    """region ← (1 − r)·region + r·C↑ inside the part of the box where r > 0 (in place)."""
    ys, xs = np.nonzero(replace > 1e-3)
    corners = np.array(
        [[xs.min() - 2, ys.min() - 2], [xs.max() + 2, ys.min() - 2], [xs.min() - 2, ys.max() + 2],
         [xs.max() + 2, ys.max() + 2]], np.float64
    )  # fmt: skip
    mapped = corners @ back[:, :2].T + back[:, 2]
    height, width = region.shape[:2]
    bx0, by0 = max(int(np.floor(mapped[:, 0].min())), 0), max(int(np.floor(mapped[:, 1].min())), 0)
    bx1 = min(int(np.ceil(mapped[:, 0].max())) + 1, width)
    by1 = min(int(np.ceil(mapped[:, 1].max())) + 1, height)
    if bx1 <= bx0 or by1 <= by0:
        return
    sub_back = back.copy()
    sub_back[:, 2] -= (bx0, by0)
    size = (bx1 - bx0, by1 - by0)
    source = aligned.crop
    if grey:
        luma = np.clip(np.rint(source.astype(np.float32) @ _REC601), 0, 255).astype(np.uint8)
        source = np.repeat(luma[..., None], 3, axis=-1)
    base = _enlarge(np.ascontiguousarray(source), sub_back, size, aligned.scale, cv2.BORDER_REPLICATE)
    weight = _enlarge(replace, sub_back, size, aligned.scale)
    weight *= gate[by0:by1, bx0:bx1]
    sub = region[by0:by1, bx0:bx1]
    # (w1·a + w2·b) / (w1 + w2) per pixel, in one pass (uint8 in and out)
    cv2.blendLinear(sub, base, 1.0 - weight, weight, dst=sub)


def composite_crops(crops: np.ndarray, edited: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """N×S×S×3 uint8 `edited` inside the N×S×S soft `masks` and `crops` outside, rounded to uint8: a
    paste-back in crop coordinates (a model's earlier passes; the trainer's measures of what is pasted)."""
    weight = np.asarray(masks, np.float32)[..., None]
    blended = crops.astype(np.float32) * (1.0 - weight) + edited.astype(np.float32) * weight
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)
