"""Measures that a smeared face cannot pass, for `diat-studio-train evaluate` (see trainer/evaluate.py).

Each one is a small function on uint8 crops (N×S×S×3) and soft masks (N×S×S float in 0..1):

- `two_sample_accuracy`: a classifier two-sample test. A fresh small classifier learns to tell two sets of
  images apart (edited faces vs real faces that have the target attribute) on half of each set and is
  scored on the other half: 0.5 means it cannot tell them apart, 1.0 that every edited face gives itself
  away (blur, stripes, colour blotches, or simply no edit). `two_sample_accuracies` trains several such
  classifiers; `evaluate` reports the best, since one sometimes fails to learn at all.
- `blur_inside`: the blur control, the same faces with only a Gaussian blur inside the edit's mask
  (σ = 2 px at 128 px crops, scaled with the crop size). An edit that the evaluator rates no better than
  this blur has learned to smear, not to edit.
- `delta_e_per_face` / `mean_delta_e_faces`: the mean CIE76 ΔE inside the mask between input and edited
  crops (per face, then averaged over faces), with the app's own Lab conversion (diat_studio.core.colour).
- `green_fraction` / `faded_lips_fraction`: mouth pixels an edit made greener than red, and (closing a
  mouth) where the teeth were, pixels less red than the photo's own lips; `paled_lips_fraction`: (opening a
  mouth) the lips' redness, rank by rank, that the opened mouth lost; `lip_warmth_shift` their b*.
- `mouth_detail_ratio`: a mouth's fine detail over the skin's around it (a soft patch on a sharp photo).
- `grey_fraction`: how many images are black and white by the app's own rule (`colour.is_grey`).
- `random_rows`: a seeded random order of rows, for grids that are drawn, not chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from diat_studio.core.colour import GREY_TOLERANCE, is_grey, mean_delta_e, srgb_to_lab
from diat_studio.core.compositing import composite_crops as composite  # the app's own, for the measures
from trainer.losses import DETAIL_SIGMA, LUMA, OPENED_LIPS_KEPT
from trainer.networks import AttributeClassifier

#: σ of the blur control at 128 px crops (scaled with the crop size: 1 px at 64 px, 4 px at 256 px).
BLUR_SIGMA_AT_128 = 2.0


#: The outer band of a local edit's soft mask (0 < m ≤ this) where the edit should already have faded out.
OUTER_FEATHER = 0.25


def outer_feather_change(crop: np.ndarray, edited: np.ndarray, mask: np.ndarray, q: float = 99.0) -> float:
    """The q-th percentile, in grey levels, of the largest per-channel change of the composited `edited`
    where the soft mask is in its outer band (0 < m ≤ OUTER_FEATHER); 0 where there is no such band.

    The mean PSNR outside the mask cannot see it: the close-mouth editors of 2026-11-27 wrote saturated
    white patches on the cheeks just outside the mouth mask (raw |Δ| ≈ 1.5 of a range of 2, about 1% of the
    crop), and the feather's tail carried a fifth of them into the photo as pale streaks beside a smile."""
    band = (mask > 0) & (mask <= OUTER_FEATHER)
    if not band.any():
        return 0.0
    change = np.abs(edited.astype(np.float32) - crop.astype(np.float32)).max(axis=-1)
    return float(np.percentile(change[band], q))


def raw_outside_change(crop: np.ndarray, output: np.ndarray, mask: np.ndarray, q: float = 99.0) -> float:
    """The q-th percentile, in grey levels, of the largest per-channel change of the network's raw output
    (before compositing) where the mask is 0: hidden patches the app never pastes, but which the feather's
    tail and a larger region margin would."""
    outside = mask == 0
    if not outside.any():
        return 0.0
    change = np.abs(output.astype(np.float32) - crop.astype(np.float32)).max(axis=-1)
    return float(np.percentile(change[outside], q))


#: Grey levels by which a pixel's green may exceed its red (beyond the photo's own) before it reads green.
GREEN_LEVELS = 4.0


def green_fraction(crop: np.ndarray, edited: np.ndarray, mask: np.ndarray) -> float:
    """The fraction of the region's pixels (m > 0.5) that the edit made greener than red: G − R of the
    edited face above the photo's own (when that is positive) by more than GREEN_LEVELS.

    Real mouths are never green (0.01% of held-out open-mouth pixels); the open-mouth editor painted
    mint-green teeth under a moustache, which a mean ΔE or the realism test hardly sees on one face in 30
    (trainer.losses.green_penalty is the training term)."""
    inside = mask > 0.5
    if not inside.any():
        return 0.0
    own = np.maximum(crop[..., 1].astype(np.float32) - crop[..., 0], 0.0)
    made = edited[..., 1].astype(np.float32) - edited[..., 0]
    return float((made[inside] > own[inside] + GREEN_LEVELS).mean())


#: CIE a* units by which a closed mouth may be less red than the photo's own lips before it reads grey.
FADED_LIP_UNITS = 8.0


def faded_lips_fraction(
    crop: np.ndarray, edited: np.ndarray, teeth: np.ndarray, lips: np.ndarray, units: float = FADED_LIP_UNITS
) -> float | None:
    """Closing a mouth: the fraction of where the teeth were (`teeth`, 0/1) whose CIE a* (redness) in the
    edited face is more than `units` below the mean a* of the photo's own lips (`lips`, 0/1: the outer lips'
    polygon around the teeth); None when the face has no teeth region or no lips to read.

    Broad toothy smiles closed into grey and olive-green mouths that are still redder than green, so
    `green_fraction` cannot see them; in real closed mouths 4% of that region falls short (1% of faces
    above 30%), in real open mouths 24% (trainer.losses.lip_colour_penalty is the training term)."""
    teeth, lips = teeth > 0, lips > 0
    if not teeth.any() or not lips.any():
        return None
    own = srgb_to_lab(crop)[..., 1][lips].mean()
    return float((srgb_to_lab(edited)[..., 1][teeth] < own - units).mean())


def _lip_ranks(
    crop: np.ndarray, edited: np.ndarray, lips: np.ndarray, region: np.ndarray, kept: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The photo's lip pixels and as many of the edited region's pixels, each ranked by a* (reddest
    first) and cut to the reddest `kept` share of the lips: two n×3 Lab arrays, or None without lips."""
    lips, inside = lips > 0, region > 0.5
    count = min(int(kept * lips.sum()), int(inside.sum()))
    if count == 0:
        return None
    own, got = srgb_to_lab(crop)[lips], srgb_to_lab(edited)[inside]
    return own[np.argsort(-own[:, 1])[:count]], got[np.argsort(-got[:, 1])[:count]]


def paled_lips_fraction(
    crop: np.ndarray,
    edited: np.ndarray,
    lips: np.ndarray,
    region: np.ndarray,
    units: float = FADED_LIP_UNITS,
    kept: float = OPENED_LIPS_KEPT,
) -> float | None:
    """Opening a mouth: of the photo's lip pixels (`lips`, 0/1) ranked by CIE a* (redness), the reddest
    `kept` share against as many of the edited region's reddest pixels (`region` > 0.5), rank by rank —
    the fraction of ranks more than `units` less red than the photo's own; None without lips to read.

    Red lipstick opened into pale pink and dull lips into grey-mauve: the opened mouth's reddest pixels
    are its lips wherever the lower lip went, so the ranks compare colours, not positions (0 for an edit
    that leaves the lips as they are; trainer.losses.opened_lips_penalty is the training term)."""
    ranks = _lip_ranks(crop, edited, lips, region, kept)
    if ranks is None:
        return None
    own, got = ranks
    return float((got[:, 1] < own[:, 1] - units).mean())


def lip_warmth_shift(
    crop: np.ndarray, edited: np.ndarray, lips: np.ndarray, region: np.ndarray, kept: float = OPENED_LIPS_KEPT
) -> float | None:
    """Opening a mouth: |mean CIE b* (warmth)| of the edited region's reddest pixels minus that of the
    photo's own lips, over the same ranks as `paled_lips_fraction`; None without lips to read. Brown
    lipstick opened into grey-mauve keeps most of its a* and loses its b*."""
    ranks = _lip_ranks(crop, edited, lips, region, kept)
    if ranks is None:
        return None
    own, got = ranks
    return float(abs(got[:, 2].mean() - own[:, 2].mean()))


def upper_lip_shift(crop: np.ndarray, edited: np.ndarray, band: np.ndarray) -> float | None:
    """Opening a mouth: ΔE (CIE76) between the mean Lab colour of the photo's upper lip's outer half
    (`band`, 0/1: trainer.data.upper_lip_bands) and the edited face's there; None without a band.

    An opened mouth's upper lip stays where it is; a pale, greyish upper lip is the fault this reads
    (trainer.losses.upper_lip_penalty is the training term)."""
    inside = band > 0
    if not inside.any():
        return None
    own, got = srgb_to_lab(crop)[inside].mean(axis=0), srgb_to_lab(edited)[inside].mean(axis=0)
    return float(np.linalg.norm(got - own))


def occluder_change(
    drawn: np.ndarray, edited: np.ndarray, occluder: np.ndarray, q: float = 99.0
) -> float | None:
    """A hand or an object over the mouth (trainer.occluders): the `q`-th percentile, over the occluder's
    pixels (`occluder` > 0.5), of how far the edited face moved from the drawn one (the largest of the three
    channels, in levels) — 0 for an editor that leaves it alone; None when nothing is drawn.

    A percentile, not the mean: the mark the open-mouth editor drew through fingers is a small patch where
    the lips would be (its mean over the whole occluder is about 1 level, its 99th percentile 17)."""
    inside = occluder > 0.5
    if not inside.any():
        return None
    change = np.abs(edited.astype(np.float32) - drawn.astype(np.float32)).max(axis=-1)
    return float(np.percentile(change[inside], q))


def _luma_detail(image: np.ndarray, sigma: float = DETAIL_SIGMA) -> np.ndarray:
    """|Y − G_σ(Y)| of an H×W×3 uint8 image's luma, in grey levels (trainer.losses.luma_detail's kernel:
    3σ each side, reflected at the border)."""
    luma = image.astype(np.float32) @ np.asarray(LUMA, np.float32)
    radius = max(1, int(np.ceil(3 * sigma)))
    blurred = cv2.GaussianBlur(
        luma, (2 * radius + 1, 2 * radius + 1), sigma, borderType=cv2.BORDER_REFLECT_101
    )
    return np.abs(luma - blurred)


def mouth_detail_ratio(
    image: np.ndarray, source: np.ndarray, mouth: np.ndarray, skin: np.ndarray
) -> float | None:
    """The mean fine detail of `image` over `mouth` (0/1) over that of `source` over `skin` (0/1), the
    skin ring around the mouth (trainer.data.mouth_detail_masks); None when either is empty or the skin
    has no detail at all (under a thousandth of a level).

    A mouth is finer than the skin around it — lips' edges, the line between them, teeth — so real closed
    mouths of held-out photos score 2.07 (median; a tenth under 1.43), real open ones 2.24; an edit that
    smears the mouth scores lower whatever the photo's own sharpness (trainer.losses.soft_mouth_penalty is
    the training term)."""
    mouth, skin = mouth > 0, skin > 0
    if not mouth.any() or not skin.any():
        return None
    own = float(_luma_detail(source)[skin].mean())
    return None if own < 1e-3 else float(_luma_detail(image)[mouth].mean()) / own


def blur_sigma(size: int) -> float:
    """The blur control's σ in pixels for S×S crops."""
    return BLUR_SIGMA_AT_128 * size / 128.0


def blur_inside(crops: np.ndarray, masks: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """The crops with only a Gaussian blur (σ from `blur_sigma` unless given) inside the masks."""
    crops = np.asarray(crops)
    sigma = blur_sigma(crops.shape[1]) if sigma is None else sigma
    blurred = np.stack(
        [cv2.GaussianBlur(crop, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101) for crop in crops]
    )
    return composite(crops, blurred, masks)


def delta_e_per_face(inputs: np.ndarray, edited: np.ndarray, masks: np.ndarray) -> list[float]:
    """Each face's mask-weighted mean ΔE (CIE76) between input and edited crop."""
    return [mean_delta_e(a, b, m) for a, b, m in zip(inputs, edited, masks, strict=True)]


def mean_delta_e_faces(inputs: np.ndarray, edited: np.ndarray, masks: np.ndarray) -> float:
    """Mean over faces of `delta_e_per_face` (0.0 for no faces)."""
    values = delta_e_per_face(inputs, edited, masks)
    return float(np.mean(values)) if values else 0.0


def grey_fraction(images: np.ndarray, tolerance: float = GREY_TOLERANCE) -> float:
    """The fraction of images that are grey by the app's rule (`diat_studio.core.colour.is_grey`)."""
    if len(images) == 0:
        return 0.0
    return float(np.mean([is_grey(image, tolerance) for image in images]))


def random_rows(rows: Sequence[int] | np.ndarray, seed: int) -> np.ndarray:
    """`rows` in a random order fixed by `seed` (take the first k for a drawn sample)."""
    return np.random.default_rng(seed).permutation(np.asarray(rows))


def target_rate(classifier: torch.nn.Module, images: np.ndarray, target: int, batch: int = 64) -> float:
    """The fraction of `images` (N×H×W×3 uint8) that `classifier` calls `target` (1: has the attribute, 0:
    has not), rounded to 4 decimals: an evaluator's success rate."""
    with torch.no_grad():
        said = [
            ((classifier(_to_tensor(images[i : i + batch])) > 0).long() == target).sum().item()
            for i in range(0, len(images), batch)
        ]
    return round(sum(said) / len(images), 4)


def success_over_blur_points(success: float, control: float) -> float:
    """How many percentage points the edit's success rate is above the blur control's."""
    return round((success - control) * 100.0, 1)


def two_sample_accuracy(
    first: np.ndarray,
    second: np.ndarray,
    *,
    steps: int = 300,
    width: int = 8,
    batch_size: int = 32,
    patch: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
) -> float | None:
    """Held-out accuracy of a fresh classifier trained to tell `first` from `second` (uint8 N×S×S×3).

    Both sets are cut to the same size n (a random subset of the larger), each split in half at random;
    an `AttributeClassifier` of `width` trains for `steps` Adam steps on random `patch`×`patch` windows
    of one half (the crops' own resolution, so fine texture such as blur or stripes stays visible; whole
    crops when they are no larger), with random flips, and is scored on the other half (each image's
    logit averaged over windows that cover it). 0.5 = the sets look alike to it, 1.0 = always told apart.
    None when a set has fewer than 2 images. Deterministic for a given seed; the global torch random
    state is left as it was.
    """
    n = min(len(first), len(second))
    if n < 2:
        return None
    rng = np.random.default_rng(seed)
    sets = [np.asarray(images)[np.sort(rng.permutation(len(images))[:n])] for images in (first, second)]
    halves = [rng.permutation(n) for _ in sets]
    cut = n // 2
    train = [images[order[:cut]] for images, order in zip(sets, halves, strict=True)]
    test = [images[order[cut:]] for images, order in zip(sets, halves, strict=True)]
    size = sets[0].shape[1]
    window = min(patch, size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = AttributeClassifier(width)
        optimiser = torch.optim.Adam(network.parameters(), lr=lr)
        half = max(batch_size // 2, 1)
        labels = torch.cat([torch.zeros(half), torch.ones(half)])
        network.train()
        for _ in range(steps):
            batch = np.concatenate([images[rng.integers(0, len(images), half)] for images in train])
            tensor = _windows(_to_tensor(batch), window, rng)
            loss = F.binary_cross_entropy_with_logits(network(tensor), labels)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        network.eval()
        with torch.no_grad():
            scores = [_tiled_logits(network, images, window) for images in test]
    correct = (scores[0] < 0).sum() + (scores[1] > 0).sum()
    return float(correct) / float(len(scores[0]) + len(scores[1]))


def two_sample_accuracies(
    first: np.ndarray, second: np.ndarray, *, repeats: int = 3, seed: int = 0, **settings: Any
) -> list[float] | None:
    """`two_sample_accuracy` by `repeats` classifiers (seeds `seed`, `seed + 1`, …), each on its own
    random halves. The test's verdict is the best of them (`max`): the small classifier sometimes never
    leaves chance — on the open-mouth faces of 2026-11-27, 2 of 5 seeds scored 50% where the other three
    told the same faces from real open mouths 98% of the time — and a classifier that failed to learn is
    no evidence that the sets look alike. Under the null the best of three stays at chance (measured at
    600 steps: real women against real women 48.2%, real open mouths against real open mouths 51.8%).
    None like `two_sample_accuracy`."""
    runs = []
    for repeat in range(max(repeats, 1)):
        accuracy = two_sample_accuracy(first, second, seed=seed + repeat, **settings)
        if accuracy is None:
            return None
        runs.append(accuracy)
    return runs


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def _windows(batch: torch.Tensor, window: int, rng: np.random.Generator) -> torch.Tensor:
    """A random window (and a random horizontal flip) per image."""
    size = batch.shape[-1]
    out = []
    for image in batch:
        y, x = rng.integers(0, size - window + 1, 2)
        crop = image[:, y : y + window, x : x + window]
        out.append(crop.flip(-1) if rng.random() < 0.5 else crop)
    return torch.stack(out)


def _tiled_logits(network: torch.nn.Module, images: np.ndarray, window: int, batch: int = 64) -> np.ndarray:
    """Each image's logit, averaged over a grid of windows (half-window stride) covering it."""
    size = images.shape[1]
    starts = sorted({*range(0, size - window + 1, max(window // 2, 1)), size - window})
    logits = []
    for begin in range(0, len(images), batch):
        tensor = _to_tensor(images[begin : begin + batch])
        tiles = [network(tensor[:, :, y : y + window, x : x + window]) for y in starts for x in starts]
        logits.append(torch.stack(tiles).mean(0))
    return torch.cat(logits).numpy()
