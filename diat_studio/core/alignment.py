"""Alignment of a face to the canonical crop the models are trained on, and paste-back.

One similarity transform (rotation, uniform scale, translation) maps the 68 landmarks onto a fixed
canonical mean face placed in an N×N crop with room for hair above and the chin below. The trainer makes
its training crops with this same module, so what a model sees in the app is what it saw in training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from diat_studio.core.regions import SoftMask

# Mean dlib-68 face shape, in units of the inter-ocular distance, eye centres at (-0.5, 0) and (0.5, 0),
# y pointing down. Derived by generalised Procrustes analysis of 1,994 real photos
# (scripts/derive_canonical_template.py on the CelebA test split) and made left/right symmetric.
CANONICAL_SHAPE = np.array(
    [
        (-1.1351, 0.0085),
        (-1.1253, 0.3086),
        (-1.0916, 0.6075),
        (-1.0340, 0.9028),
        (-0.9229, 1.1778),
        (-0.7465, 1.4185),
        (-0.5278, 1.6232),
        (-0.2794, 1.7908),
        (0.0000, 1.8399),
        (0.2794, 1.7908),
        (0.5278, 1.6232),
        (0.7465, 1.4185),
        (0.9229, 1.1778),
        (1.0340, 0.9028),
        (1.0916, 0.6075),
        (1.1253, 0.3086),
        (1.1351, 0.0085),
        (-0.9202, -0.2238),
        (-0.7755, -0.3364),
        (-0.5833, -0.3634),
        (-0.3872, -0.3299),
        (-0.2009, -0.2502),
        (0.2009, -0.2502),
        (0.3872, -0.3299),
        (0.5833, -0.3634),
        (0.7755, -0.3364),
        (0.9202, -0.2238),
        (0.0000, -0.0225),
        (0.0000, 0.1738),
        (0.0000, 0.3707),
        (0.0000, 0.5708),
        (-0.2169, 0.6947),
        (-0.1125, 0.7352),
        (0.0000, 0.7716),
        (0.1125, 0.7352),
        (0.2169, 0.6947),
        (-0.6935, 0.0000),
        (-0.5713, -0.0730),
        (-0.4217, -0.0682),
        (-0.2971, 0.0316),
        (-0.4355, 0.0561),
        (-0.5809, 0.0534),
        (0.2971, 0.0316),
        (0.4217, -0.0682),
        (0.5713, -0.0730),
        (0.6935, 0.0000),
        (0.5809, 0.0534),
        (0.4355, 0.0561),
        (-0.4568, 1.0346),
        (-0.2878, 0.9730),
        (-0.1210, 0.9444),
        (0.0000, 0.9716),
        (0.1210, 0.9444),
        (0.2878, 0.9730),
        (0.4568, 1.0346),
        (0.2964, 1.2112),
        (0.1312, 1.2870),
        (0.0000, 1.3011),
        (-0.1312, 1.2870),
        (-0.2964, 1.2112),
        (-0.3857, 1.0488),
        (-0.1225, 1.0442),
        (0.0000, 1.0563),
        (0.1225, 1.0442),
        (0.3857, 1.0488),
        (0.1249, 1.1342),
        (0.0000, 1.1487),
        (-0.1249, 1.1342),
    ]
)

# Points used to estimate the transform: brows, nose, eyes and mouth. The jaw line is left out: it moves
# with head pose and expression far more than the inner face does.
ALIGNMENT_POINTS = np.arange(17, 68)


@dataclass(frozen=True)
class CanonicalTemplate:
    """Where the canonical face sits in the crop. Recorded in every model's manifest."""

    size: int = 128
    """Crop side in pixels (N)."""
    eye_distance: float = 0.25
    """Inter-ocular distance as a fraction of the crop side."""
    eye_center_y: float = 0.40
    """Vertical position of the eyes' midpoint as a fraction of the crop side (horizontally centred)."""
    name: str = "diat-v1"

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"crop size must be at least 16 px, got {self.size}")
        if not 0.05 <= self.eye_distance <= 0.8 or not 0.1 <= self.eye_center_y <= 0.9:
            raise ValueError(f"implausible template placement: {self}")

    def points(self) -> np.ndarray:
        """The 68 canonical landmarks in crop pixel coordinates (pixel centres at integers)."""
        n = float(self.size)
        centre = np.array([0.5 * n, self.eye_center_y * n]) - 0.5
        return CANONICAL_SHAPE * (self.eye_distance * n) + centre

    def with_size(self, size: int) -> CanonicalTemplate:
        return CanonicalTemplate(size, self.eye_distance, self.eye_center_y, self.name)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> CanonicalTemplate:
        known = {key: data[key] for key in ("size", "eye_distance", "eye_center_y", "name") if key in data}
        return cls(**known)  # type: ignore[arg-type]


def eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(image-left eye centre, image-right eye centre) from iBUG-68 landmarks."""
    return landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)


def estimate_similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform (Umeyama, no reflection) mapping source points onto target.

    Returns a 2×3 matrix M with target ≈ source @ M[:, :2].T + M[:, 2].
    """
    source = np.asarray(source, np.float64)
    target = np.asarray(target, np.float64)
    mu_s, mu_t = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - mu_s, target - mu_t
    covariance = dst.T @ src / len(source)
    u, singular, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    variance = (src**2).sum() / len(source)
    scale = float(np.trace(np.diag(singular) @ sign) / max(variance, 1e-12))
    matrix = np.zeros((2, 3))
    matrix[:, :2] = scale * rotation
    matrix[:, 2] = mu_t - matrix[:, :2] @ mu_s
    return matrix


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(matrix, np.float64))


def apply_affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """A face warped into the canonical crop, with the transform that did it."""

    crop: np.ndarray
    """N×N×3 uint8 RGB."""
    matrix: np.ndarray
    """2×3 image → crop."""
    template: CanonicalTemplate

    @property
    def inverse(self) -> np.ndarray:
        """2×3 crop → image."""
        return invert_affine(self.matrix)

    @property
    def scale(self) -> float:
        """Crop pixels per image pixel."""
        return float(np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.matrix, points)

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return apply_affine(self.inverse, points)


def alignment_matrix(landmarks: np.ndarray, template: CanonicalTemplate) -> np.ndarray:
    """2×3 image → crop similarity for these landmarks."""
    landmarks = np.asarray(landmarks, np.float64)
    return estimate_similarity(landmarks[ALIGNMENT_POINTS], template.points()[ALIGNMENT_POINTS])


def align_face(rgb: np.ndarray, landmarks: np.ndarray, template: CanonicalTemplate) -> AlignedFace:
    """Warp the face with these landmarks into the template's N×N crop.

    Large faces are first shrunk with area averaging (no aliasing), so a 1,500 px face in a 12 MP photo
    gives the same clean crop as a 200 px one. Outside the photo the crop is filled by reflection.
    """
    matrix = alignment_matrix(landmarks, template)
    n = template.size
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    height, width = rgb.shape[:2]
    # The part of the photo that the crop shows, plus a little room for interpolation.
    corners = apply_affine(invert_affine(matrix), np.array([[0, 0], [n, 0], [0, n], [n, n]], np.float64))
    pad = 2.0 / min(scale, 1.0)
    x0 = int(np.clip(np.floor(corners[:, 0].min() - pad), 0, width - 1))
    y0 = int(np.clip(np.floor(corners[:, 1].min() - pad), 0, height - 1))
    x1 = int(np.clip(np.ceil(corners[:, 0].max() + pad), x0 + 1, width))
    y1 = int(np.clip(np.ceil(corners[:, 1].max() + pad), y0 + 1, height))
    region = rgb[y0:y1, x0:x1]
    shrink = 1.0
    if scale < 0.8:
        shrink = scale
        size = (max(1, round((x1 - x0) * shrink)), max(1, round((y1 - y0) * shrink)))
        region = cv2.resize(region, size, interpolation=cv2.INTER_AREA)
        shrink_x = size[0] / (x1 - x0)
        shrink_y = size[1] / (y1 - y0)
    else:
        shrink_x = shrink_y = 1.0
    # region pixel q ↔ image pixel p:  p = origin + (q + 0.5) / s - 0.5  (pixel-centre convention)
    to_image = np.array(
        [[1.0 / shrink_x, 0.0, x0 + 0.5 / shrink_x - 0.5], [0.0, 1.0 / shrink_y, y0 + 0.5 / shrink_y - 0.5]]
    )
    region_matrix = _compose(matrix, to_image)
    crop = cv2.warpAffine(
        np.ascontiguousarray(region),
        region_matrix,
        (n, n),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT_101,
    )
    return AlignedFace(crop, matrix, template)


def _compose(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """The 2×3 affine `outer ∘ inner`."""
    full_outer = np.vstack([outer, [0.0, 0.0, 1.0]])
    full_inner = np.vstack([inner, [0.0, 0.0, 1.0]])
    return (full_outer @ full_inner)[:2]


def paste_back(
    image: np.ndarray,
    aligned: AlignedFace,
    edited_crop: np.ndarray,
    mask: SoftMask,
) -> np.ndarray:
    """A copy of `image` with `edited_crop` warped back in through `mask` (image coordinates).

    Pixels where the mask is 0 — everything outside the feathered region — are copied unchanged, bit for
    bit. The mask is also limited to where the crop really covers the photo.
    """
    height, width = image.shape[:2]
    out = image.copy()
    x0, y0 = max(mask.left, 0), max(mask.top, 0)
    x1, y1 = min(mask.right, width), min(mask.bottom, height)
    if x1 <= x0 or y1 <= y0:
        return out
    alpha = mask.alpha[y0 - mask.top : y1 - mask.top, x0 - mask.left : x1 - mask.left]
    # crop → region-local image coordinates
    shift = np.array([[1.0, 0.0, -x0], [0.0, 1.0, -y0]])
    back = _compose(shift, aligned.inverse)
    size = (x1 - x0, y1 - y0)
    upscaling = aligned.scale < 1.0
    warped = cv2.warpAffine(
        np.ascontiguousarray(edited_crop),
        back,
        size,
        flags=cv2.INTER_CUBIC if upscaling else cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    n = edited_crop.shape[0]
    coverage = cv2.warpAffine(
        np.ones((n, n), np.float32), back, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    weight = alpha * np.clip(coverage, 0.0, 1.0)
    original = out[y0:y1, x0:x1]
    blended = (
        original.astype(np.float32) * (1.0 - weight[..., None])
        + warped.astype(np.float32) * weight[..., None]
    )
    blended = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(weight[..., None] > 0, blended, original)
    return out
