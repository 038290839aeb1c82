"""An exponential moving average of a network's weights (the exported T is the average).

A GAN generator's weights oscillate around a good solution from step to step; their running average is
smoother and usually cleaner (Yazıcı et al., ICLR 2019; used by StyleGAN, BigGAN). Buffers (instance
norm statistics, if any) are copied, not averaged.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """`average` follows `model`: avg ← decay · avg + (1 − decay) · w after every `update`.

    The effective decay ramps up from 0 (`min(decay, (1 + n) / (10 + n))` after n updates), so that a
    short run's average is not dominated by the untrained starting weights. `ramp=False` for a network that
    starts trained (an editor continued with `--init-transform`): its start is the model to keep, and a
    ramped average (0.98 after 500 updates, 0.999 only after 9,000) follows the live network's first
    excursions almost step by step — a continued close-mouth editor's average showed the live editor's
    blotches within 200 steps."""

    def __init__(self, model: nn.Module, decay: float = 0.999, *, ramp: bool = True) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"the EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.ramp = ramp
        self.updates = 0
        self.average = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates)) if self.ramp else self.decay
        for avg, current in zip(self.average.parameters(), model.parameters(), strict=True):
            avg.lerp_(current.detach().to(avg.dtype), 1.0 - decay)
        for avg, current in zip(self.average.buffers(), model.buffers(), strict=True):
            avg.copy_(current)

    def state_dict(self) -> dict[str, object]:
        return {"updates": self.updates, "average": self.average.state_dict()}

    def load_state_dict(self, state: dict[str, object]) -> None:
        self.updates = int(state["updates"])  # type: ignore[arg-type]
        self.average.load_state_dict(state["average"])  # type: ignore[arg-type]
