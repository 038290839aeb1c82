"""Identity features for the DIAT identity loss and for evaluation.

`FaceIdentity` warps our canonical crops into dlib's 150×150 face-chip geometry with one fixed,
differentiable resampling (both are similarity-aligned to a mean face, so the map between them is a
constant), then runs the dlib ResNet port. It gives deep stage features for the loss (the paper used
VGG-Face conv4/conv5; we use the ResNet's level2 (128 ch, 8×8) and level1 (256 ch, 4×4) stages) and the
128-D descriptor used for "same person" checks (distance < 0.6).

Where dlib is not installed (a lent GPU machine), `save_identity_weights` writes the ResNet's weights and
the crop → chip map into one torch file beforehand (`diat-studio-train pack`), and `FaceIdentity(template,
weights=...)` reads them back without dlib.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diat_studio.core.alignment import CanonicalTemplate
from trainer.dlib_resnet import CHIP_SIZE, DlibFaceResNet

DEFAULT_STAGES = ("level2", "level1")
SAME_PERSON_DISTANCE = 0.6


def crop_to_chip_matrix(template: CanonicalTemplate, chip_size: int = CHIP_SIZE) -> np.ndarray:
    """2×3 affine: dlib chip pixel (u, v) → crop pixel (x, y), for crops of `template.size`.

    Found by letting dlib cut its chip out of two coordinate-ramp images laid on the canonical face and
    fitting an affine map to the sampled coordinates (least squares over every chip pixel).
    """
    import dlib  # only here: the trainer's training path runs where dlib is not installed

    probe = 256
    points = template.with_size(probe).points()
    box = dlib.rectangle(*map(int, (*points.min(0), *points.max(0))))
    detection = dlib.full_object_detection(box, [dlib.point(round(x), round(y)) for x, y in points])
    ys, xs = np.mgrid[0:probe, 0:probe].astype(np.uint8)
    sampled_x = dlib.get_face_chip(np.dstack([xs] * 3), detection, chip_size, 0.25)[..., 0].astype(float)
    sampled_y = dlib.get_face_chip(np.dstack([ys] * 3), detection, chip_size, 0.25)[..., 0].astype(float)
    v, u = np.mgrid[0:chip_size, 0:chip_size]
    design = np.stack([u.ravel(), v.ravel(), np.ones(u.size)], axis=1)
    row_x = np.linalg.lstsq(design, sampled_x.ravel(), rcond=None)[0]
    row_y = np.linalg.lstsq(design, sampled_y.ravel(), rcond=None)[0]
    scale = template.size / probe  # pixel centres: x_S = (x_probe + 0.5)·scale − 0.5
    matrix = np.stack([row_x, row_y]) * scale
    matrix[:, 2] += 0.5 * scale - 0.5
    return matrix


def save_identity_weights(path: Path, templates: list[CanonicalTemplate]) -> None:
    """The ResNet's weights (float16: the descriptors move by < 1e-3) and the crop → chip map of each
    template, in one torch file that `FaceIdentity(weights=path)` reads without dlib."""
    net = DlibFaceResNet.from_dat()
    state = {name: tensor.half() for name, tensor in net.state_dict().items()}
    matrices = {_template_key(t): crop_to_chip_matrix(t).tolist() for t in templates}
    torch.save({"format": IDENTITY_WEIGHTS_FORMAT, "resnet": state, "chip_matrices": matrices}, path)


IDENTITY_WEIGHTS_FORMAT = "diat-identity-1"


def _template_key(template: CanonicalTemplate) -> str:
    return json.dumps(template.to_dict(), sort_keys=True)


def _load_identity_weights(path: Path, template: CanonicalTemplate) -> tuple[DlibFaceResNet, np.ndarray]:
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("format") != IDENTITY_WEIGHTS_FORMAT:
        raise ValueError(f"{path} is not an identity weights file written by `diat-studio-train pack`")
    matrix = saved["chip_matrices"].get(_template_key(template))
    if matrix is None:
        raise ValueError(f"{path} has no crop → chip map for the template {template.to_dict()}")
    net = DlibFaceResNet()
    net.load_state_dict({name: tensor.float() for name, tensor in saved["resnet"].items()})
    net.eval().requires_grad_(False)
    return net, np.asarray(matrix, np.float64)


class FaceIdentity(nn.Module):
    """Frozen identity network on crops in [-1, 1].

    `weights`: a file written by `save_identity_weights` (no dlib needed); by default dlib's own model
    file and dlib itself (for the crop → chip map)."""

    def __init__(
        self,
        template: CanonicalTemplate,
        stages: tuple[str, ...] = DEFAULT_STAGES,
        weights: Path | str | None = None,
    ) -> None:
        super().__init__()
        if weights:
            self.net, matrix = _load_identity_weights(Path(weights), template)
        else:
            self.net, matrix = DlibFaceResNet.from_dat(), crop_to_chip_matrix(template)
        self.stages = stages
        v, u = np.mgrid[0:CHIP_SIZE, 0:CHIP_SIZE].astype(np.float64)
        x = matrix[0, 0] * u + matrix[0, 1] * v + matrix[0, 2]
        y = matrix[1, 0] * u + matrix[1, 1] * v + matrix[1, 2]
        size = template.size
        grid = np.stack([(x + 0.5) / size * 2 - 1, (y + 0.5) / size * 2 - 1], axis=-1)
        self.register_buffer("grid", torch.from_numpy(grid.astype(np.float32))[None])
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FaceIdentity:  # always frozen
        return super().train(False)

    def chips(self, crops: torch.Tensor) -> torch.Tensor:
        """N×3×S×S in [-1, 1] → N×3×150×150 in 0..255 (dlib's chip geometry)."""
        grid = self.grid.expand(crops.shape[0], -1, -1, -1)
        chips = F.grid_sample(
            crops.float(), grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        return (chips + 1.0) * 127.5

    def forward(self, crops: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(the chosen stage feature maps, the 128-D descriptors)."""
        stages, descriptor = self.net.features(self.chips(crops))
        return [stages[name] for name in self.stages], descriptor

    @torch.no_grad()
    def descriptors(self, crops: torch.Tensor) -> torch.Tensor:
        return self.net(self.chips(crops))
