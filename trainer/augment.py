"""Differentiable augmentation for the discriminator (DiffAugment, Zhao et al., NeurIPS 2020).

D sees real and edited faces through the *same* random colour, translation and cutout transforms, and
gradients flow through them to T. With a few thousand faces and steps, D otherwise memorises the real
set and its gradient to T turns into noise; augmenting only the real faces would instead teach T to
produce the augmentations. Images are N×C×H×W in [-1, 1]; every transform is per-sample.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from trainer.losses import gaussian_blur


def colour(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random brightness (±0.5), saturation (×0..2) and contrast (×0.5..1.5), as in DiffAugment."""
    n = x.shape[0]

    def uniform() -> torch.Tensor:
        return torch.rand(n, 1, 1, 1, generator=generator).to(x.device, x.dtype)

    x = x + (uniform() - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (uniform() * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (uniform() + 0.5) + mean


def translation(
    x: torch.Tensor, ratio: float = 0.125, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size, filling with zeros (mid-grey)."""
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sy, sy + 1, (n, 1, 1), generator=generator).to(x.device)
    tx = torch.randint(-sx, sx + 1, (n, 1, 1), generator=generator).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    gy = torch.clamp(gy[None] + ty + 1, 0, h + 1)
    gx = torch.clamp(gx[None] + tx + 1, 0, w + 1)
    padded = F.pad(x, (1, 1, 1, 1))
    index = (gy * (w + 2) + gx).reshape(n, 1, h * w).expand(-1, x.shape[1], -1)
    return padded.reshape(n, x.shape[1], -1).gather(2, index).reshape_as(x)


def cutout(x: torch.Tensor, ratio: float = 0.25, generator: torch.Generator | None = None) -> torch.Tensor:
    """Zero one random square of `ratio` × the image size per image."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=generator).to(x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=generator).to(x.device)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device), indexing="ij")
    inside = (gy[None] >= cy - ch // 2) & (gy[None] < cy - ch // 2 + ch)
    inside &= (gx[None] >= cx - cw // 2) & (gx[None] < cx - cw // 2 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


def blur(
    x: torch.Tensor,
    sigma_max: float = 3.0,
    probability: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A Gaussian blur of random σ (up to `sigma_max` px at 128 px, scaled with the crop) on about
    `probability` of the images. For classifiers (the evaluators and guides), not D: a soft photo keeps its
    glasses and its open mouth. Trained without it, the GPU's evaluators of 2026-11-30 called 81% of the
    blurred glasses faces glasses-free and 83% of the blurred open mouths closed (the blur control of
    trainer.measures blurs by σ 2 at 128 px), so the blur control said nothing and a smear passed. Trained
    with it, a judge is strict where a blur erases the change (a slightly opened mouth: the shipped open
    mouth read 59% against the carried judge's 82%), so the carried judges do without it."""
    n, _, _, w = x.shape
    chosen = torch.rand(n, generator=generator) < probability
    sigma = (0.3 + torch.rand(n, generator=generator) * (sigma_max - 0.3)) * w / 128.0
    blurred = gaussian_blur(x, sigma.to(x.device))
    return torch.where(chosen.to(x.device)[:, None, None, None], blurred, x)


#: The policies by name, in the order they are applied.
AUGMENTATIONS: dict[str, Callable[..., torch.Tensor]] = {
    "blur": blur,
    "colour": colour,
    "translation": translation,
    "cutout": cutout,
}


class DiffAugment:
    """Applies the chosen policies; call it on real and fake batches alike."""

    def __init__(self, policies: Sequence[str] = ("colour", "translation", "cutout"), seed: int = 0):
        unknown = [p for p in policies if p not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentation {unknown[0]!r} (known: {', '.join(AUGMENTATIONS)})")
        self.policies = [p for p in AUGMENTATIONS if p in policies]
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        for policy in self.policies:
            x = AUGMENTATIONS[policy](x, generator=self.generator)
        return x

    def state(self) -> torch.Tensor:
        return self.generator.get_state()

    def restore(self, state: torch.Tensor) -> None:
        self.generator.set_state(state)
