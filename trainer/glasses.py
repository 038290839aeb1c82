"""Synthetic eyeglasses drawn onto glasses-free faces: (with glasses, without) pairs for a supervised
warm start of the remove-eyeglasses transform.

Real photos never come in pairs of the same face with and without glasses, so the GAN alone must find
out what to remove; drawn glasses give T an exact target from the first step. The drawings vary what
real glasses vary — lens shape (oval, round, rectangular), size, rim thickness and colour (black, brown,
grey, metal), bridge, temple arms towards the ears, clear, tinted or dark lenses — and are placed by the
68 landmarks, so they sit on the eyes as real frames do. The adversarial stage on real glasses faces
then closes the gap between drawn and real frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_RIM_COLOURS = (
    (20, 20, 20), (45, 35, 30), (70, 50, 35), (90, 90, 95), (150, 150, 155), (175, 150, 90), (110, 30, 30),
)  # fmt: skip
#: How often each rim colour is drawn: real frames in CelebA and LFW are mostly black or dark brown
#: plastic and thin grey metal; gold and red are rare (looked at: 2026-11-29, 12 + 12 faces side by side —
#: the earlier uniform choice drew bright gold and grey rims on half the faces).
_RIM_ODDS = np.array([0.38, 0.14, 0.08, 0.12, 0.16, 0.06, 0.06])
_METAL = (3, 4, 5)  # grey and gold: thin wire frames
_TINTS = ((40, 40, 40), (70, 50, 30), (40, 60, 80), (60, 60, 30))
#: Light tinted lenses come in colours too: blue, violet, pink, amber and green ones kept their tint
#: through the remover when only grey and brown ones were drawn (its grid, 2026-11-29).
_COLOUR_TINTS = (*_TINTS, (60, 90, 170), (110, 80, 170), (180, 100, 130), (160, 110, 50), (70, 100, 70))


@dataclass(frozen=True)
class GlassesStyle:
    shape: str  # "oval", "round" or "rect"
    size: float  # lens half-width as a fraction of the eye distance
    aspect: float  # lens half-height / half-width
    thickness: int
    rim: tuple[int, int, int]
    lens_alpha: float  # 0 = clear
    tint: tuple[int, int, int]
    drop: float  # lens centre below the eye centre, fraction of the eye distance
    glare: float = 0.0
    """A light reflected by each lens: a soft white streak across it, at this opacity (0 = none)."""
    browline: bool = False
    """Only the upper rim is drawn (a half-rim or browline frame); the lower lens edge is bare."""

    @classmethod
    def random(cls, rng: np.random.Generator) -> GlassesStyle:
        dark = rng.random() < 0.15
        tinted = not dark and rng.random() < 0.25
        colour = int(rng.choice(len(_RIM_COLOURS), p=_RIM_ODDS))
        # real lenses are wider than tall and about 0.8 eye distances across (half-width 0.4)
        return cls(
            shape=str(rng.choice(["oval", "round", "rect"], p=[0.35, 0.15, 0.5])),
            size=float(rng.uniform(0.36, 0.48)),
            aspect=float(rng.uniform(0.55, 0.8)),
            thickness=int(rng.integers(1, 3) if colour in _METAL else rng.integers(1, 5)),
            rim=_RIM_COLOURS[colour],
            lens_alpha=float(rng.uniform(0.6, 0.9) if dark else rng.uniform(0.12, 0.4) if tinted else 0.0),
            tint=_pick(_TINTS if dark else _COLOUR_TINTS, rng),
            drop=float(rng.uniform(0.0, 0.1)),
            glare=float(rng.uniform(0.1, 0.35)) if rng.random() < 0.35 else 0.0,
            browline=bool(rng.random() < 0.1),
        )


def _pick(colours: tuple[tuple[int, int, int], ...], rng: np.random.Generator) -> tuple[int, int, int]:
    return colours[int(rng.integers(len(colours)))]


def _lens_polygon(centre: np.ndarray, half_w: float, half_h: float, angle: float, shape: str) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    if shape == "rect":  # a superellipse: a rectangle with rounded corners
        power = 0.35
        x = np.sign(np.cos(t)) * np.abs(np.cos(t)) ** power
        y = np.sign(np.sin(t)) * np.abs(np.sin(t)) ** power
    else:
        x, y = np.cos(t), np.sin(t)
    if shape == "round":
        half_h = half_w * max(half_h / half_w, 0.85)
    points = np.stack([x * half_w, y * half_h], 1)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return points @ rotation.T + centre


def draw_glasses(
    image: np.ndarray, landmarks: np.ndarray, style: GlassesStyle, scale: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """(the face with glasses, the drawn-pixel mask in [0, 1]) for one H×W×3 uint8 crop and its 68 points.

    Drawn at `scale`× and area-averaged down, so thin rims are anti-aliased like a photographed frame."""
    h, w = image.shape[:2]
    left, right = landmarks[36:42].mean(0), landmarks[42:48].mean(0)
    eye_vector = right - left
    eye_distance = float(np.hypot(*eye_vector))
    angle = float(np.arctan2(eye_vector[1], eye_vector[0]))
    down = np.array([-np.sin(angle), np.cos(angle)])
    half_w = style.size * eye_distance
    half_h = style.aspect * half_w
    lens_layer = np.zeros((h * scale, w * scale), np.uint8)
    rim_layer = np.zeros((h * scale, w * scale), np.uint8)
    glare_layer = np.zeros((h * scale, w * scale), np.uint8)
    lenses = []
    for centre in (left, right):
        polygon = _lens_polygon(centre + down * style.drop * eye_distance, half_w, half_h, angle, style.shape)
        lenses.append(polygon)
        pts = np.round(polygon * scale).astype(np.int32)
        cv2.fillPoly(lens_layer, [pts], 255)
        if style.browline:  # the upper half of the outline: the points above the lens centre
            upper = pts[(polygon - polygon.mean(0)) @ down < 0]
            cv2.polylines(rim_layer, [upper], False, 255, style.thickness * scale, cv2.LINE_AA)
        else:
            cv2.polylines(rim_layer, [pts], True, 255, style.thickness * scale, cv2.LINE_AA)
        if style.glare > 0:  # a slanted streak through the lens's upper half, clipped to the lens below
            along = np.array([np.cos(angle + 0.9), np.sin(angle + 0.9)])
            mid = polygon.mean(0) - down * 0.3 * half_h
            streak = np.round(np.array([mid - along * half_h, mid + along * half_h]) * scale).astype(np.int32)
            cv2.line(glare_layer, tuple(streak[0]), tuple(streak[1]), 255, max(int(0.35 * half_h * scale), 1))
    # bridge: between the inner lens edges, slightly above the lens centres
    inner_left = lenses[0][np.argmax(lenses[0] @ eye_vector)]
    inner_right = lenses[1][np.argmin(lenses[1] @ eye_vector)]
    lift = -down * 0.15 * half_h
    bridge = np.round(np.array([inner_left + lift, inner_right + lift]) * scale).astype(np.int32)
    cv2.polylines(rim_layer, [bridge], False, 255, style.thickness * scale, cv2.LINE_AA)
    # temple arms: from the outer lens edges towards the ears (jaw points 0 and 16), fading out
    for lens, ear, side in ((lenses[0], landmarks[0], -1.0), (lenses[1], landmarks[16], 1.0)):
        outer = lens[np.argmax(side * (lens @ eye_vector))]
        outer = outer - down * 0.3 * half_h
        end = outer + 0.85 * (ear - outer) - down * 0.1 * eye_distance
        arm = np.round(np.array([outer, end]) * scale).astype(np.int32)
        cv2.polylines(rim_layer, [arm], False, 255, max(style.thickness - 1, 1) * scale, cv2.LINE_AA)
    lens_alpha = cv2.resize(lens_layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    rim_alpha = cv2.resize(rim_layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    out = image.astype(np.float32)
    if style.lens_alpha > 0:
        a = (lens_alpha * style.lens_alpha)[..., None]
        out = out * (1 - a) + np.array(style.tint, np.float32) * a
    glare = np.zeros_like(lens_alpha)
    if style.glare > 0:
        glare_layer = cv2.GaussianBlur(glare_layer, (0, 0), 1.5 * scale) * (lens_layer > 0)
        glare = cv2.resize(glare_layer, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        glare *= style.glare
        out = out * (1 - glare[..., None]) + 255.0 * glare[..., None]
    a = rim_alpha[..., None]
    out = out * (1 - a) + np.array(style.rim, np.float32) * a
    mask = np.clip(np.maximum.reduce([rim_alpha, lens_alpha * (style.lens_alpha > 0), glare]), 0, 1)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), mask


def add_glasses_batch(
    images: np.ndarray, landmarks: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """N×H×W×3 uint8 faces and N×68×2 landmarks → (faces with random glasses, N×H×W drawn masks)."""
    drawn = np.empty_like(images)
    masks = np.empty(images.shape[:3], np.float32)
    for index in range(len(images)):
        drawn[index], masks[index] = draw_glasses(images[index], landmarks[index], GlassesStyle.random(rng))
    return drawn, masks
