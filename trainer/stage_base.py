"""The base of every training stage: networks, optimisers, samplers, autocast, checkpoint state, and
loading networks from earlier runs. The stages themselves live in trainer.stages and trainer.edit_stage."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from diat_studio.core.regions import RegionKind
from trainer.config import TrainConfig
from trainer.data import BatchSampler, PreparedDataset
from trainer.identity import FaceIdentity
from trainer.networks import build_network
from trainer.runs import RunError, network_state, run_config


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


class Stage:
    """One training stage: its networks, optimisers and data samplers, and one `step`."""

    def __init__(
        self, config: TrainConfig, dataset: PreparedDataset, device: torch.device, dist: Distributed
    ):
        self.config = config
        self.dataset = dataset
        self.device = device
        self.dist = dist
        self.networks: dict[str, nn.Module] = {}
        self.modules: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.samplers: dict[str, BatchSampler] = {}
        self._identity: FaceIdentity | None = None

    # -- building ----------------------------------------------------------------------------------------

    def add_network(
        self, name: str, module: nn.Module, lr: float | None, betas: tuple[float, float] = (0.5, 0.999)
    ):
        module = module.to(self.device)
        self.networks[name] = module
        wrapped: nn.Module = module
        if self.dist.world > 1 and lr is not None:
            wrapped = nn.parallel.DistributedDataParallel(module)
        self.modules[name] = wrapped
        if lr is not None:
            self.optimizers[name] = torch.optim.Adam(module.parameters(), lr=lr, betas=betas)
        return wrapped

    def frozen(self, module: nn.Module) -> nn.Module:
        module = module.to(self.device).eval()
        module.requires_grad_(False)
        return module

    def sampler(
        self,
        name: str,
        rows: np.ndarray,
        region: RegionKind | None = None,
        flip: bool = True,
        batch_size: int | None = None,
    ) -> BatchSampler:
        seed = self.config.seed * 1000 + self.dist.rank * 100 + len(self.samplers)
        sampler = BatchSampler(
            self.dataset,
            rows,
            batch_size or self.config.batch_size,
            seed,
            flip,
            region,
            self.config.mask_feather,
            self.config.region_margin,
        )
        self.samplers[name] = sampler
        return sampler

    @property
    def identity(self) -> FaceIdentity:
        if self._identity is None:
            self._identity = FaceIdentity(self.dataset.template, weights=self.config.identity_weights).to(
                self.device
            )
        return self._identity

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.device.type == "cuda" and self.config.amp and torch.cuda.is_bf16_supported():
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}

    def fixed_rows(self, attribute: str | None = None, value: int | None = None) -> np.ndarray:
        """Held-out faces for sample grids: the first N of the split, chosen before any training."""
        rows = self.dataset.indices("heldout", attribute, value)
        if len(rows) == 0:
            rows = self.dataset.indices("all", attribute, value)
        return rows[: self.config.samples]

    # -- the loop's interface ----------------------------------------------------------------------------

    def step(self, step: int) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def sample_columns(self) -> list[np.ndarray]:
        """Columns of the sample grid (each N×H×W×3 uint8) for the fixed held-out faces."""
        return []

    @torch.no_grad()
    def heldout_metrics(self) -> dict[str, float]:
        return {}

    def train_mode(self, training: bool) -> None:
        for module in self.networks.values():
            module.train(training)

    def state_dict(self) -> dict[str, Any]:
        return {
            "networks": {name: module.state_dict() for name, module in self.networks.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "samplers": {name: sampler.state() for name, sampler in self.samplers.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, module in self.networks.items():
            module.load_state_dict(state["networks"][name])
        for name, optimizer in self.optimizers.items():
            # the learning rate is this run's setting, not the checkpoint's: Adam's state dict carries the
            # rate it was saved with, and `--resume RUN --lr X` must train at X (its moments are kept)
            rates = [group["lr"] for group in optimizer.param_groups]
            optimizer.load_state_dict(state["optimizers"][name])
            for group, rate in zip(optimizer.param_groups, rates, strict=True):
                group["lr"] = rate
        for name, sampler in self.samplers.items():
            if name in state.get("samplers", {}):
                sampler.restore(state["samplers"][name])

    # -- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def optimise(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def fixed_batch(self, rows: np.ndarray, region: RegionKind | None = None) -> dict[str, torch.Tensor]:
        loader = BatchSampler(
            self.dataset,
            rows,
            len(rows),
            0,
            False,
            region,
            self.config.mask_feather,
            self.config.region_margin,
        )
        return self.to_device(loader.load(rows))


def load_trained(
    run: str | Path,
    name: str,
    width_field: str,
    fallback: str | None = None,
    kind: str | None = None,
    **options: float,
) -> nn.Module:
    """Network `name` (or `fallback`) from an earlier run, rebuilt with that run's width.

    `kind` is the registered network to build when the checkpoint name is not one (e.g. the weight
    average "editor_ema" is an "editor"); `options` go to its constructor (e.g. an editor's
    `delta_lowpass`, which is not in the weights)."""
    config = run_config(Path(run))
    try:
        state = network_state(Path(run), name)
        built = kind or name
    except ValueError:
        if fallback is None:
            raise
        state = network_state(Path(run), fallback)
        built = kind or fallback
    width = int(config[width_field])
    module = build_network(built, width=width, **options)
    try:
        module.load_state_dict(state)
    except RuntimeError:  # shapes: a run whose config.json does not record the width it trained at
        raise RunError(
            f"{run}: the '{name}' weights in its checkpoint do not fit a {built} network of width {width} "
            f"(its config's {width_field}); was it initialised from a run of another width?"
        ) from None
    return module


def attribute_rows(stage: Stage, value: int) -> np.ndarray:
    if not stage.config.attribute:
        raise ValueError(f"stage '{stage.config.stage}' needs --attribute")
    return stage.dataset.indices("train", stage.config.attribute, value)
