"""Loss functions, registered by name in `LOSSES`.

GAN losses take D's logit already signed so that "real" means "has the target attribute value".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F


def lsgan_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN (Mao et al.) with targets +1 (real) and −1 (fake) on the signed logit."""
    return 0.5 * ((real - 1.0).pow(2).mean() + (fake + 1.0).pow(2).mean())


def lsgan_generator(fake: torch.Tensor) -> torch.Tensor:
    return 0.5 * (fake - 1.0).pow(2).mean()


def bce_discriminator(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """The paper's min-max (non-saturating) GAN loss."""
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def bce_generator(fake: torch.Tensor) -> torch.Tensor:
    return F.softplus(-fake).mean()


def feature_distance(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean squared difference of feature maps, averaged over layers (b is the fixed reference)."""
    return sum(F.mse_loss(x, y.detach()) for x, y in zip(a, b, strict=True)) / max(len(a), 1)  # type: ignore[return-value]


def total_variation(x: torch.Tensor) -> torch.Tensor:
    return (x[:, :, 1:] - x[:, :, :-1]).abs().mean() + (x[:, :, :, 1:] - x[:, :, :, :-1]).abs().mean()


def masked_mse(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return ((a - b).pow(2) * weight).sum() / (weight.sum() * a.shape[1]).clamp_min(1.0)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample Gaussian blur (σ in pixels, one per sample), reflect padding."""
    radius = int(torch.ceil(3 * sigma.max()).item())
    offsets = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernels = torch.exp(-0.5 * (offsets[None] / sigma[:, None].to(x.dtype)) ** 2)
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    n, c, h, w = x.shape
    out = F.pad(x, (radius, radius, radius, radius), mode="reflect").reshape(
        1, n * c, h + 2 * radius, w + 2 * radius
    )
    horizontal = kernels.repeat_interleave(c, 0)[:, None, None, :]
    vertical = kernels.repeat_interleave(c, 0)[:, None, :, None]
    out = F.conv2d(out, horizontal, groups=n * c)
    out = F.conv2d(out, vertical, groups=n * c)
    return out.reshape(n, c, h, w)


#: Every loss by name: GAN pairs, identity/feature, regularisers.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "lsgan_discriminator": lsgan_discriminator,
    "lsgan_generator": lsgan_generator,
    "bce_discriminator": bce_discriminator,
    "bce_generator": bce_generator,
    "feature_distance": feature_distance,
    "total_variation": total_variation,
    "masked_mse": masked_mse,
}


def gan_losses(name: str) -> tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]]:
    return LOSSES[f"{name}_discriminator"], LOSSES[f"{name}_generator"]
