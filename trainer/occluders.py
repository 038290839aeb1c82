"""Synthetic hands and objects held over the mouth: what a mouth editor must leave alone.

The open-mouth editor drew a mouth through the fingers of a hand held over it (a pink dot on a knuckle, the
card's grid, docs/ABLATION.md): dlib's landmarks place the lips under the hand, the mask covers them, and
no face in training ever showed the editor that skin over the mouth is not a mouth to open. A few real
photos do (hands, microphones), unlabelled, so they teach nothing. Drawn occluders give the editor that
example with an exact answer — the occluder's pixels unchanged (trainer.edit_stage's `occluder_weight`) —
and `evaluate` a measure of it (`occluder_change`).

What is drawn: two to four fingers (capsules side by side, shaded like cylinders: darker at their sides,
so a crease shows between them) in the colour of the face's own skin — read on the cheeks by the
landmarks — lighter or darker, with a surface grain, at a random angle; or, one time in four, a rounded
object in a random colour (a microphone, a cup, a pen). Each covers a random 30-90% of the mouth's
outer-lip polygon.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: Landmarks of the cheeks (points between the jaw line and the nose), where the face's skin colour is read.
_CHEEKS = ((2, 31), (3, 48), (14, 35), (13, 54))
#: Share of the drawings that are objects rather than fingers.
OBJECT_SHARE = 0.25


@dataclass(frozen=True)
class OccluderStyle:
    fingers: int  # 0 = an object
    width: float  # one finger's (or the object's) width, as a fraction of the mouth's width
    angle: float  # radians from horizontal
    along: float  # offset along the occluder's axis, fraction of the mouth width
    across: float  # offset across it, fraction of the mouth width (sets how much of the mouth is covered)
    tone: float  # brightness factor on the skin colour
    colour: tuple[int, int, int] | None  # an object's colour (None: the face's skin)
    grain: float  # σ of the surface's grain, in levels

    @classmethod
    def random(cls, rng: np.random.Generator) -> OccluderStyle:
        is_object = rng.random() < OBJECT_SHARE
        return cls(
            fingers=0 if is_object else int(rng.integers(2, 5)),
            width=float(rng.uniform(0.45, 0.8) if is_object else rng.uniform(0.22, 0.34)),
            angle=float(rng.uniform(-np.pi / 3, np.pi / 3) + (np.pi / 2 if rng.random() < 0.3 else 0.0)),
            along=float(rng.uniform(-0.3, 0.3)),
            across=float(rng.uniform(-0.45, 0.45)),
            tone=float(rng.uniform(0.8, 1.15)),
            colour=tuple(int(c) for c in rng.integers(15, 200, 3)) if is_object else None,  # type: ignore[arg-type]
            grain=float(rng.uniform(0.5, 4.0)),
        )


def skin_colour(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """The median RGB of small patches on both cheeks (float32, 3)."""
    h, w = image.shape[:2]
    patches = []
    for jaw, inner in _CHEEKS:
        centre = np.round((landmarks[jaw] + landmarks[inner]) / 2).astype(int)
        x, y = np.clip(centre, 2, [w - 3, h - 3])
        patches.append(image[y - 2 : y + 3, x - 2 : x + 3].reshape(-1, 3))
    return np.median(np.concatenate(patches), axis=0).astype(np.float32)


def draw_occluder(
    image: np.ndarray, landmarks: np.ndarray, style: OccluderStyle, scale: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """(the face with a hand or an object over its mouth, the occluder's mask in [0, 1]) for one H×W×3
    uint8 crop and its 68 points. Drawn at `scale`× and area-averaged down (anti-aliased edges)."""
    h, w = image.shape[:2]
    mouth = landmarks[48:60]
    centre = mouth.mean(0)
    mouth_width = float(np.linalg.norm(landmarks[54] - landmarks[48]))
    axis = np.array([np.cos(style.angle), np.sin(style.angle)])
    normal = np.array([-axis[1], axis[0]])
    count = max(style.fingers, 1)
    width = style.width * mouth_width
    length = (1.6 if style.fingers else 2.2) * mouth_width
    # the occluder's strips side by side across its axis, the whole shifted by `across`
    first = -(count - 1) / 2 * width + style.across * mouth_width
    start = centre + axis * style.along * mouth_width
    big = (h * scale, w * scale)
    coverage = np.zeros(big, np.float32)
    shade = np.zeros(big, np.float32)
    yy, xx = np.mgrid[0 : big[0], 0 : big[1]].astype(np.float32) / scale
    for index in range(count):
        middle = start + normal * (first + index * width)
        ends = [middle - axis * length / 2, middle + axis * length / 2]
        radius = width / 2
        strip = np.zeros(big, np.uint8)
        pts = np.round(np.array(ends) * scale).astype(np.int32)
        cv2.line(strip, tuple(pts[0]), tuple(pts[1]), 255, max(round(2 * radius * scale), 1), cv2.LINE_AA)
        cv2.circle(strip, tuple(pts[1]), round(radius * scale), 255, -1, cv2.LINE_AA)
        inside = strip.astype(np.float32) / 255
        # cylinder shading: brightest along the strip's middle, darker towards its sides
        off = np.abs((xx - middle[0]) * normal[0] + (yy - middle[1]) * normal[1]) / max(radius, 1e-3)
        light = 1.0 - 0.3 * np.clip(off, 0, 1) ** 2
        newer = inside > coverage
        shade = np.where(newer, light, shade)
        coverage = np.maximum(coverage, inside)
    alpha = cv2.resize(coverage, (w, h), interpolation=cv2.INTER_AREA)
    light = cv2.resize(shade * coverage, (w, h), interpolation=cv2.INTER_AREA) / np.maximum(alpha, 1e-3)
    base = skin_colour(image, landmarks) if style.colour is None else np.array(style.colour, np.float32)
    colour = base * style.tone * light[..., None]
    # a skin's or a surface's own grain, so that "flat" is not what tells an occluder
    colour = np.clip(colour + _grain(h, w, style), 0, 255)
    a = alpha[..., None]
    out = image.astype(np.float32) * (1 - a) + colour * a
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), np.clip(alpha, 0, 1)


def _grain(h: int, w: int, style: OccluderStyle) -> np.ndarray:
    """H×W×1 grain of σ = `style.grain` levels, seeded by the style (a drawing is reproducible)."""
    seed = abs(hash((style.angle, style.along, style.across))) % (2**32)
    return np.random.default_rng(seed).normal(0.0, style.grain, (h, w, 1)).astype(np.float32)


def mouth_coverage(mask: np.ndarray, landmarks: np.ndarray) -> float:
    """The share of the outer-lip polygon (landmarks 48-59) under the occluder (mask > 0.5)."""
    lips = np.zeros(mask.shape, np.uint8)
    cv2.fillPoly(lips, [np.round(landmarks[48:60]).astype(np.int32)], 1)
    inside = lips > 0
    return float((mask[inside] > 0.5).mean()) if inside.any() else 0.0


#: How much of the mouth a drawn occluder must cover to be used (fewer: the mouth is still to be edited).
MIN_COVERAGE, MAX_COVERAGE = 0.3, 0.9


def occlude_batch(
    images: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator, tries: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """N×H×W×3 uint8 faces and N×68×2 landmarks → (faces each with an occluder over 30-90% of its mouth,
    N×H×W occluder masks). Styles are redrawn (up to `tries` times) until the coverage is in range; the
    last draw is kept otherwise."""
    drawn = np.empty_like(images)
    masks = np.empty(images.shape[:3], np.float32)
    for index, (image, marks) in enumerate(zip(images, landmarks, strict=True)):
        for _ in range(tries):
            drawn[index], masks[index] = draw_occluder(image, marks, OccluderStyle.random(rng))
            if MIN_COVERAGE <= mouth_coverage(masks[index], marks) <= MAX_COVERAGE:
                break
    return drawn, masks
