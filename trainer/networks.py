"""The DIAT networks, registered by name in `NETWORKS`. Widths are configuration.

All image tensors are N×3×S×S in [-1, 1]; masks are N×1×S×S in [0, 1].

- TransformNet (T, and the reconstruction network g): the paper's 16-layer fully convolutional network —
  a 9×9 conv, two stride-2 convs down, 5 residual blocks (10 conv layers), two upsampling convs, a 9×9
  conv to RGB; instance norm; tanh output. Deviation: upsampling is nearest-neighbour ×2 followed by a
  3×3 conv instead of a fractionally-strided conv, which avoids checkerboard artefacts (Odena et al.,
  2016) and exports to ONNX as plain Resize + Conv.
- Discriminator (D): strided 4×4 convs with leaky ReLU; one logit. Pretrained as the attribute
  classifier, then the GAN discriminator; in DIAT-A its conv feature maps are the identity features.
- Denoiser (f): two 3×3 conv layers; predicts a residual (f(x) = x + conv(relu(conv(x)))), so that the
  identity it must learn on real faces is its starting point.
- LocalEnhancer: input T(x), x and the mask (7 channels); dilated convs; output T(x) + residual.
- GlobalEnhancer: input the (blurred) transformed face; dilated convs; output input + residual.
- ResidualEditor (the recipe's T): the same 16-layer body, but it predicts an edit Δ that is added to the
  photo, and its last layer starts at zero — an untrained editor returns the photo unchanged, so training
  starts from a clean face instead of from a reconstruction that first has to be learnt. Optionally Δ
  passes a fixed Gaussian low-pass (DeltaLowPass) before it is added: the editor cannot paint the
  pixel-scale pattern that gave its edits away to the two-sample test (docs/ABLATION.md), while the
  photo's own fine texture passes through untouched.
- SpectralDiscriminator (the recipe's D): strided convs under spectral normalisation, no normalisation
  layers (which fight the Lipschitz bound), one logit per image; also used, smaller, as the region D.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn


def _norm(channels: int) -> nn.Module:
    return nn.InstanceNorm2d(channels, affine=True)


class _ConvLayer(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, padding_mode="reflect"),
            _norm(cout),
        ]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class _Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _ConvLayer(channels, channels, 3), _ConvLayer(channels, channels, 3, relu=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class _Upsample(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _ConvLayer(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class TransformNet(nn.Module):
    """T (and g): 16 conv layers, instance norm, tanh."""

    def __init__(self, width: int = 32, residual_blocks: int = 5) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            _ConvLayer(3, w, 9),
            _ConvLayer(w, 2 * w, 3, stride=2),
            _ConvLayer(2 * w, 4 * w, 3, stride=2),
            *[_Residual(4 * w) for _ in range(residual_blocks)],
            _Upsample(4 * w, 2 * w),
            _Upsample(2 * w, w),
            nn.Conv2d(w, 3, 9, padding=4, padding_mode="reflect"),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(x))


class DeltaLowPass(nn.Module):
    """A fixed, separable Gaussian low-pass (σ in pixels, reflect padding, per channel) for the editor's Δ.

    Not trained and not stored: its kernel is a non-persistent buffer rebuilt from σ, so checkpoints of
    editors with and without it are interchangeable (a run trained without it can be continued with it).
    It exports to ONNX as Pad(reflect) + two depthwise Convs."""

    def __init__(self, sigma: float, channels: int = 3) -> None:
        super().__init__()
        if sigma <= 0:
            raise ValueError(f"DeltaLowPass needs σ > 0, got {sigma}")
        self.sigma = float(sigma)
        self.radius = max(1, math.ceil(3.0 * self.sigma))
        offsets = torch.arange(-self.radius, self.radius + 1, dtype=torch.float32)
        taps = torch.exp(-0.5 * (offsets / self.sigma) ** 2)
        taps = taps / taps.sum()
        self.channels = channels
        self.horizontal: torch.Tensor
        self.vertical: torch.Tensor
        self.register_buffer(
            "horizontal", taps.reshape(1, 1, 1, -1).repeat(channels, 1, 1, 1), persistent=False
        )
        self.register_buffer(
            "vertical", taps.reshape(1, 1, -1, 1).repeat(channels, 1, 1, 1), persistent=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.radius
        x = F.pad(x, (r, r, r, r), mode="reflect")
        x = F.conv2d(x, self.horizontal.to(x.dtype), groups=self.channels)
        return F.conv2d(x, self.vertical.to(x.dtype), groups=self.channels)


#: The detail gate's starting logit: sigmoid(−4) ≈ 0.018, so an untrained gate takes away under 2% of the
#: photo's fine detail (a fraction of a grey level) while its weights still get a useful gradient.
GATE_START = -4.0


class DetailGate(nn.Module):
    """What a low-passed Δ cannot do: take away the photo's own fine detail.

    A residual editor x + LP(Δ) can only add smooth change, so fine structure of the photo — the teeth of
    a smile in a mouth being closed, the thin rims of glasses being removed — survives every edit (the
    close-mouth grids: teeth left as pale dots in closed lips). The gate, a smooth map g in [0, 1] read from
    the editor's last features, takes away g ⊙ (x − G_σ(x)), the photo's detail finer than σ, where the edit
    needs it gone; the editor's Δ paints the rest. Its head starts at GATE_START, so a new gate is nearly
    closed and an editor continued with one starts where it was (docs/ABLATION.md, "The detail gate")."""

    def __init__(self, features: int, sigma: float) -> None:
        super().__init__()
        self.head = nn.Conv2d(features, 1, 3, padding=1, padding_mode="reflect")
        nn.init.zeros_(self.head.weight)
        nn.init.constant_(self.head.bias, GATE_START)  # type: ignore[arg-type]
        self.detail = DeltaLowPass(sigma, channels=3)
        self.smooth = DeltaLowPass(sigma, channels=1)

    def gate(self, features: torch.Tensor) -> torch.Tensor:
        """g: N×1×H×W in [0, 1], as smooth as the detail it removes."""
        return self.smooth(torch.sigmoid(self.head(features)))

    def forward(self, features: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The change that takes the detail away: −g ⊙ (x − G_σ(x))."""
        return -self.gate(features) * (x - self.detail(x))


class ResidualEditor(nn.Module):
    """T as a residual editor: output = clamp(x + Δ(x)), Δ from the paper's 16-layer body, last conv zeroed.

    For a local edit the stage composites x + m ⊙ Δ with the region's soft mask m; the app does the same
    composite (m · T(x) + (1 − m) · x), so the exported network needs no mask input. `delta_lowpass` > 0
    passes Δ through a `DeltaLowPass` of that σ (pixels of the crop) — part of the network, so the
    exported model does the same as the trained one. `detail_gate` > 0 adds a `DetailGate` of that σ
    (Δ then also takes away the photo's detail where the gate opens)."""

    def __init__(
        self,
        width: int = 32,
        residual_blocks: int = 5,
        delta_lowpass: float = 0.0,
        detail_gate: float = 0.0,
    ) -> None:
        super().__init__()
        body = TransformNet(width, residual_blocks).net
        last = body[-1]
        assert isinstance(last, nn.Conv2d)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)  # type: ignore[arg-type]
        self.net = body
        self.lowpass = DeltaLowPass(delta_lowpass) if delta_lowpass > 0 else None
        self.detail_gate = DetailGate(width, detail_gate) if detail_gate > 0 else None

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        features = self.net[:-1](x)  # the gate reads the body's last features
        delta = self.net[-1](features)
        delta = self.lowpass(delta) if self.lowpass is not None else delta
        return delta if self.detail_gate is None else delta + self.detail_gate(features, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(x + self.delta(x), -1.0, 1.0)

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """An editor trained without a detail gate loads into one with it: the gate keeps its start (the
        weights of a run are continued with a gate the way they are with a new low-pass)."""
        if self.detail_gate is not None and not any(key.startswith("detail_gate.") for key in state_dict):
            state_dict = {
                **state_dict,
                **{f"detail_gate.{key}": value for key, value in self.detail_gate.state_dict().items()},
            }
        return super().load_state_dict(state_dict, strict=strict, assign=assign)


class PlainEditor(TransformNet):
    """The ablation's counterpart of ResidualEditor: the paper's T (repaints the whole crop through tanh,
    random start), seen through the same `delta` interface (Δ = T(x) − x)."""

    def delta(self, x: torch.Tensor) -> torch.Tensor:
        return self(x) - x


class SpectralDiscriminator(nn.Module):
    """D for the recipe: spectral-normalised 4×4 stride-2 convs, leaky ReLU, a linear head on pooled
    features. `forward` returns (logit, feature maps) like `Discriminator`."""

    def __init__(self, width: int = 32, blocks: int = 5) -> None:
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        widths = [min(width * 2**i, 8 * width) for i in range(blocks)]
        layers = []
        cin = 3
        for cout in widths:
            layers.append(nn.Sequential(sn(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2, inplace=True)))
            cin = cout
        self.layers = nn.ModuleList(layers)
        self.head = sn(nn.Linear(cin, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.head(x.sum(dim=(2, 3))).squeeze(1), features


class Discriminator(nn.Module):
    """D: an attribute classifier / GAN discriminator. `forward` returns (logit, feature maps)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        widths = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        layers = []
        cin = 3
        for index, cout in enumerate(widths):
            block: list[nn.Module] = [nn.Conv2d(cin, cout, 4, 2, 1)]
            if index > 0:
                block.append(_norm(cout))
            block.append(nn.LeakyReLU(0.2, inplace=True))
            layers.append(nn.Sequential(*block))
            cin = cout
        self.layers = nn.ModuleList(layers)
        self.head = nn.Conv2d(cin, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return self.head(x).mean(dim=(1, 2, 3)), features


class Denoiser(nn.Module):
    """f: two 3×3 conv layers on a residual path."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, padding_mode="reflect")
        self.conv2 = nn.Conv2d(width, 3, 3, padding=1, padding_mode="reflect")
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def _dilated_body(cin: int, width: int, layers: int) -> nn.Sequential:
    modules: list[nn.Module] = [nn.Conv2d(cin, width, 3, padding=1), nn.LeakyReLU(0.2, inplace=True)]
    for index in range(layers - 2):
        dilation = 2 ** (index % 3)
        modules += [
            nn.Conv2d(width, width, 3, padding=dilation, dilation=dilation),
            nn.LeakyReLU(0.2, inplace=True),
        ]
    last = nn.Conv2d(width, 3, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    modules.append(last)
    return nn.Sequential(*modules)


class LocalEnhancer(nn.Module):
    """E_local(T(x), x, m): refines the transformed face inside the mask, sees the original around it.

    The residual is added to the mask composite m·T(x) + (1 − m)·x rather than to T(x): outside the mask
    the starting point is then the photo itself, so E only has to learn to leave it alone (a residual
    near zero) instead of learning to undo everything T changed there."""

    def __init__(self, width: int = 32, layers: int = 6) -> None:
        super().__init__()
        self.body = _dilated_body(7, width, layers)

    def forward(self, transformed: torch.Tensor, original: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        residual = self.body(torch.cat([transformed, original, mask * 2.0 - 1.0], dim=1))
        composite = mask * transformed + (1.0 - mask) * original
        return torch.clamp(composite + residual, -1.0, 1.0)


class GlobalEnhancer(nn.Module):
    """E_global(y): de-blurs a whole face."""

    def __init__(self, width: int = 32, layers: int = 8) -> None:
        super().__init__()
        self.body = _dilated_body(3, width, layers)

    def forward(self, transformed: torch.Tensor) -> torch.Tensor:
        return torch.clamp(transformed + self.body(transformed), -1.0, 1.0)


class AttributeClassifier(nn.Module):
    """The evaluator: an attribute classifier that is *not* the GAN's D (different architecture, own data
    pass), so that "the edit worked" is not judged by the network the transform was trained to fool."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for cout in (width, 2 * width, 4 * width, 8 * width):
            layers += [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            cin = cout
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.3)
        self.fc = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x).mean(dim=(2, 3)))).squeeze(1)


#: Every network the trainer can build, by the name used in configs and checkpoints.
NETWORKS: dict[str, type[nn.Module]] = {
    "transform": TransformNet,
    "reconstruction": TransformNet,
    "editor": ResidualEditor,
    "plain_editor": PlainEditor,
    "discriminator": Discriminator,
    "sn_discriminator": SpectralDiscriminator,
    "denoiser": Denoiser,
    "local_enhancer": LocalEnhancer,
    "global_enhancer": GlobalEnhancer,
    "classifier": AttributeClassifier,
}


def build_network(name: str, **options: float) -> nn.Module:
    try:
        return NETWORKS[name](**options)
    except KeyError:
        raise ValueError(f"unknown network {name!r} (known: {', '.join(NETWORKS)})") from None


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
