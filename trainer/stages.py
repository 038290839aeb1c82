"""Training stages, registered by name in `STAGES`.

The DIAT schedule (paper v1, §3-4) as stages, each its own run and each resumable:

    reconstruct      pretrain T as a reconstruction network                      (attribute-independent)
    perceptual       g: reconstruct x under the perceptual (identity-feature) loss (attribute-independent)
    denoise          f: ||f(g(x)) − x||² + ||f(x) − x||²                         (attribute-independent)
    classify         pretrain D as the attribute classifier
    diat             joint GAN training of T and D with the identity loss and ||f(T(x)) − T(x)||²;
                     --variant diat (identity on the face-recognition network) or diat-a (on D's features)
    enhance-local    local enhancer: ||(1−m)⊙(E − x)||² + feature loss against T(x) inside the mask
    enhance-global   global enhancer: ||E(B(x)) − x|| for a Gaussian blur B    (attribute-independent)
    evaluator        the independent attribute classifier used by `evaluate` (not D)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from diat_studio.core.regions import RegionKind
from trainer.augment import DiffAugment
from trainer.data import BatchSampler, PreparedDataset, to_uint8
from trainer.edit_stage import EditStage
from trainer.identity import SAME_PERSON_DISTANCE
from trainer.losses import feature_distance, gan_losses, gaussian_blur, masked_mse, total_variation
from trainer.networks import build_network
from trainer.runs import run_config
from trainer.stage_base import Distributed, Stage, attribute_rows, load_trained

__all__ = ["STAGES", "Distributed", "Stage", "load_trained"]

#: D's feature maps used as identity features in DIAT-A (blocks 2 and 3: 64 and 128 channels at 32 and
#: 16 px for a 128 px crop and width 32 — deep enough to be about the face, not the pixels).
DIAT_A_FEATURE_LAYERS = (1, 2)


# -- attribute-independent pretraining -------------------------------------------------------------------


class ReconstructStage(Stage):
    """T pretrained as a reconstruction network (L1), so that the GAN starts from the identity map."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.model = self.add_network(
            "transform", build_network("transform", width=self.config.transform_width), self.config.lr
        )
        self.data = self.sampler("faces", self.dataset.indices("train"))
        self.fixed = self.fixed_rows()

    def step(self, step: int) -> dict[str, float]:
        x = self.to_device(self.data.next())["image"]
        with self.autocast():
            loss = F.l1_loss(self.model(x), x)
        self.optimise(self.optimizers["transform"], loss)
        return {"l1": loss.item()}

    def sample_columns(self) -> list[np.ndarray]:
        x = self.fixed_batch(self.fixed)["image"]
        return [to_uint8(x), to_uint8(self.networks["transform"](x))]


class PerceptualStage(Stage):
    """g: reconstruction under the perceptual loss only (identity features) — the artefacts it makes are
    what the denoiser f learns to remove."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        network = build_network("reconstruction", width=self.config.transform_width)
        self.model = self.add_network("reconstruction", network, self.config.lr)
        self.data = self.sampler("faces", self.dataset.indices("train"))
        self.fixed = self.fixed_rows()

    def step(self, step: int) -> dict[str, float]:
        x = self.to_device(self.data.next())["image"]
        with self.autocast():
            features, _ = self.identity(self.model(x))
            with torch.no_grad():
                reference, _ = self.identity(x)
            loss = feature_distance(features, reference)
        self.optimise(self.optimizers["reconstruction"], loss)
        return {"perceptual": loss.item()}

    def sample_columns(self) -> list[np.ndarray]:
        x = self.fixed_batch(self.fixed)["image"]
        return [to_uint8(x), to_uint8(self.networks["reconstruction"](x))]


class DenoiseStage(Stage):
    """f: ||f(g(x)) − x||² + ||f(x) − x||²."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        if not self.config.reconstruction:
            raise ValueError("stage 'denoise' needs --reconstruction RUN (a finished 'perceptual' run)")
        self.g = self.frozen(load_trained(self.config.reconstruction, "reconstruction", "transform_width"))
        self.model = self.add_network(
            "denoiser", build_network("denoiser", width=self.config.denoiser_width), self.config.lr
        )
        self.data = self.sampler("faces", self.dataset.indices("train"))
        self.fixed = self.fixed_rows()

    def step(self, step: int) -> dict[str, float]:
        x = self.to_device(self.data.next())["image"]
        with torch.no_grad():
            artefacts = self.g(x)
        with self.autocast():
            from_g = F.mse_loss(self.model(artefacts), x)
            from_x = F.mse_loss(self.model(x), x)
            loss = from_g + from_x
        self.optimise(self.optimizers["denoiser"], loss)
        return {"denoise_g": from_g.item(), "denoise_x": from_x.item()}

    def sample_columns(self) -> list[np.ndarray]:
        x = self.fixed_batch(self.fixed)["image"]
        g = self.g(x)
        return [to_uint8(x), to_uint8(g), to_uint8(self.networks["denoiser"](g))]


class GlobalEnhanceStage(Stage):
    """The global enhancer learns to undo a Gaussian blur on real faces: ||E(B(x)) − x||₁."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        network = build_network("global_enhancer", width=self.config.enhancer_width)
        self.model = self.add_network("global_enhancer", network, self.config.lr)
        self.data = self.sampler("faces", self.dataset.indices("train"))
        self.fixed = self.fixed_rows()
        self.generator = torch.Generator().manual_seed(self.config.seed + self.dist.rank)

    def blur(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        low, high = self.config.blur_sigma
        sigma = low + (high - low) * torch.rand(x.shape[0], generator=generator or self.generator)
        return gaussian_blur(x, sigma.to(x.device))

    def step(self, step: int) -> dict[str, float]:
        x = self.to_device(self.data.next())["image"]
        blurred = self.blur(x)
        with self.autocast():
            loss = F.l1_loss(self.model(blurred), x)
        self.optimise(self.optimizers["global_enhancer"], loss)
        return {"l1": loss.item()}

    def sample_columns(self) -> list[np.ndarray]:
        x = self.fixed_batch(self.fixed)["image"]
        blurred = self.blur(x, torch.Generator().manual_seed(0))
        return [to_uint8(x), to_uint8(blurred), to_uint8(self.networks["global_enhancer"](blurred))]

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "blur_generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.generator.set_state(state["blur_generator"])


# -- classifiers --------------------------------------------------------------------------------------------


class ClassifyStage(Stage):
    """D pretrained as the attribute classifier (balanced batches, binary cross-entropy)."""

    network_name = "discriminator"
    width_field = "discriminator_width"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        network = build_network(self.network_name, width=getattr(self.config, self.width_field))
        self.model = self.add_network(self.network_name, network, self.config.lr)
        half = max(self.config.batch_size // 2, 1)
        self.positives = self.sampler("positives", attribute_rows(self, 1), batch_size=half)
        self.negatives = self.sampler("negatives", attribute_rows(self, 0), batch_size=half)
        # `--augment blur` (trainer.augment.blur): both classes alike, so that softness says nothing
        policies = self.config.augment_policies
        self.augment = DiffAugment(policies, seed=self.config.seed * 7 + self.dist.rank) if policies else None

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        output = self.model(x)
        return output[0] if isinstance(output, tuple) else output

    def step(self, step: int) -> dict[str, float]:
        x = torch.cat(
            [self.to_device(self.positives.next())["image"], self.to_device(self.negatives.next())["image"]]
        )
        labels = torch.cat([torch.ones(len(x) // 2), torch.zeros(len(x) - len(x) // 2)]).to(self.device)
        if self.augment is not None:
            x = self.augment(x)
        with self.autocast():
            logits = self.logits(x).float()
            loss = F.binary_cross_entropy_with_logits(logits, labels)
        self.optimise(self.optimizers[self.network_name], loss)
        accuracy = ((logits > 0).float() == labels).float().mean()
        return {"bce": loss.item(), "accuracy": accuracy.item()}

    def heldout_metrics(self) -> dict[str, float]:
        return classifier_accuracy(
            self.networks[self.network_name], self.dataset, self.config.attribute or "", self.device
        )


class EvaluatorStage(ClassifyStage):
    """The independent evaluator classifier (a different architecture from D)."""

    network_name = "classifier"
    width_field = "classifier_width"


@torch.no_grad()
def classifier_accuracy(
    model: nn.Module, dataset: PreparedDataset, attribute: str, device: torch.device, limit: int = 2000
) -> dict[str, float]:
    """Balanced accuracy on held-out faces (mean of the per-class accuracies)."""
    was_training = model.training
    model.eval()
    per_class = []
    for value in (0, 1):
        rows = dataset.indices("heldout", attribute, value)[:limit]
        if len(rows) == 0:
            continue
        correct = 0
        for start in range(0, len(rows), 64):
            chunk = rows[start : start + 64]
            x = BatchSampler(dataset, chunk, len(chunk), 0, False).load(chunk)["image"].to(device)
            output = model(x)
            logits = output[0] if isinstance(output, tuple) else output
            correct += int(((logits > 0).long() == value).sum())
        per_class.append(correct / len(rows))
    model.train(was_training)
    return {"heldout_balanced_accuracy": float(np.mean(per_class))} if per_class else {}


# -- attribute transfer ---------------------------------------------------------------------------------


class DiatStage(Stage):
    """Joint training of T (attribute transfer) against D, with the identity loss and the perceptual
    regulariser. DIAT: identity on the face-recognition network (stage features + 128-D descriptor);
    DIAT-A: identity on D's own conv features, D's learning rate 1e-5."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        config = self.config
        if config.init_transform:
            transform = load_trained(
                config.init_transform, "transform", "transform_width", fallback="reconstruction"
            )
        else:
            transform = build_network("transform", width=config.transform_width)
        if config.init_discriminator:
            discriminator = load_trained(config.init_discriminator, "discriminator", "discriminator_width")
        else:
            discriminator = build_network("discriminator", width=config.discriminator_width)
        self.T = self.add_network("transform", transform, config.lr)
        self.D = self.add_network("discriminator", discriminator, config.discriminator_lr)
        self.f = (
            self.frozen(load_trained(config.denoiser, "denoiser", "denoiser_width"))
            if config.denoiser
            else None
        )
        self.sign = 1.0 if config.target_value == 1 else -1.0
        self.source = self.sampler("source", attribute_rows(self, 1 - config.target_value))
        self.target = self.sampler("target", attribute_rows(self, config.target_value))
        self.gan_d, self.gan_g = gan_losses(config.gan_loss)
        self.fixed = self.fixed_rows(config.attribute, 1 - config.target_value)

    def step(self, step: int) -> dict[str, float]:
        config = self.config
        x = self.to_device(self.source.next())["image"]
        real = self.to_device(self.target.next())["image"]
        n = x.shape[0]
        # D: real faces with the target attribute value vs T(x)
        with torch.no_grad(), self.autocast():
            fake = self.T(x)
        with self.autocast():
            logits, _ = self.D(torch.cat([real, fake]))
            signed = self.sign * logits.float()
            d_loss = self.gan_d(signed[: real.shape[0]], signed[real.shape[0] :])
        self.optimise(self.optimizers["discriminator"], d_loss)

        # T: fool D, keep the identity, stay a fixed point of the denoiser
        single = self.dist.world == 1
        if single:
            self.networks["discriminator"].requires_grad_(False)
        losses: dict[str, float] = {"d": d_loss.item()}
        with self.autocast():
            out = self.T(x)
            if config.variant == "diat-a":
                logits, features = self.D(torch.cat([out, x]))
                layers = [features[i] for i in DIAT_A_FEATURE_LAYERS]
                identity = feature_distance([f[:n] for f in layers], [f[n:] for f in layers])
                embedding = torch.zeros((), device=self.device)
                logits = logits[:n]
            else:
                logits, _ = self.D(out)
                out_features, out_descriptor = self.identity(out)
                with torch.no_grad():
                    x_features, x_descriptor = self.identity(x)
                identity = feature_distance(out_features, x_features)
                embedding = F.mse_loss(out_descriptor, x_descriptor) * out_descriptor.shape[1]
            adversarial = self.gan_g(self.sign * logits.float())
            loss = config.adversarial_weight * adversarial + config.identity_weight * identity
            if config.variant == "diat":
                loss = loss + config.embedding_weight * embedding
            if self.f is not None and config.perceptual_weight > 0:
                perceptual = F.mse_loss(self.f(out), out)
                loss = loss + config.perceptual_weight * perceptual
                losses["perceptual"] = perceptual.item()
            if config.smoothness_weight > 0:
                loss = loss + config.smoothness_weight * total_variation(out)
            if config.reconstruction_weight > 0:
                loss = loss + config.reconstruction_weight * F.l1_loss(out, x)
        self.optimise(self.optimizers["transform"], loss)
        if single:
            self.networks["discriminator"].requires_grad_(True)
        losses.update(adversarial=adversarial.item(), identity=identity.item(), t_total=loss.item())
        if config.variant == "diat":
            losses["embedding"] = embedding.item()
        return losses

    def sample_columns(self) -> list[np.ndarray]:
        x = self.fixed_batch(self.fixed)["image"]
        return [to_uint8(x), to_uint8(self.networks["transform"](x))]

    def heldout_metrics(self) -> dict[str, float]:
        """On the fixed held-out faces: how often D says "target", and how often the person is kept."""
        x = self.fixed_batch(self.fixed)["image"]
        out = self.networks["transform"](x)
        logits, _ = self.networks["discriminator"](out)
        distance = (self.identity.descriptors(out) - self.identity.descriptors(x)).norm(dim=1)
        return {
            "heldout_d_target_rate": float((self.sign * logits > 0).float().mean()),
            "heldout_identity_distance": float(distance.mean()),
            "heldout_identity_kept": float((distance < SAME_PERSON_DISTANCE).float().mean()),
        }


class LocalEnhanceStage(Stage):
    """E_local: outside the mask match x, inside match T(x)'s features; T is frozen."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        config = self.config
        if not config.transform_run:
            raise ValueError("stage 'enhance-local' needs --transform-run RUN (a 'diat' run)")
        source_config = run_config(Path(config.transform_run))
        region = config.region or source_config.get("region")
        if not region:
            raise ValueError("stage 'enhance-local' needs --region (mouth or eyes) for a local attribute")
        self.region = RegionKind(region)
        self.T = self.frozen(load_trained(config.transform_run, "transform", "transform_width"))
        network = build_network("local_enhancer", width=config.enhancer_width)
        self.E = self.add_network("local_enhancer", network, config.lr)
        attribute = config.attribute or source_config.get("attribute")
        target = 1 if (source_config.get("direction", config.direction) == "add") else 0
        rows = (
            self.dataset.indices("train", attribute, 1 - target)
            if attribute
            else self.dataset.indices("train")
        )
        self.data = self.sampler("source", rows, region=self.region)
        heldout = self.fixed_rows(attribute, 1 - target) if attribute else self.fixed_rows()
        self.fixed = heldout

    def step(self, step: int) -> dict[str, float]:
        batch = self.to_device(self.data.next())
        x, mask = batch["image"], batch["mask"]
        with torch.no_grad():
            transformed = self.T(x)
        with self.autocast():
            enhanced = self.E(transformed, x, mask)
            outside = masked_mse(enhanced, x, 1.0 - mask)
            composite = mask * enhanced + (1 - mask) * x
            target = mask * transformed + (1 - mask) * x
            features, _ = self.identity(composite)
            with torch.no_grad():
                reference, _ = self.identity(target)
            inside = feature_distance(features, reference)
            loss = outside + self.config.feature_weight * inside
        self.optimise(self.optimizers["local_enhancer"], loss)
        return {"outside": outside.item(), "feature": inside.item()}

    def sample_columns(self) -> list[np.ndarray]:
        batch = self.fixed_batch(self.fixed, self.region)
        x, mask = batch["image"], batch["mask"]
        transformed = self.T(x)
        enhanced = self.networks["local_enhancer"](transformed, x, mask)
        return [
            to_uint8(x),
            to_uint8(mask * transformed + (1 - mask) * x),
            to_uint8(mask * enhanced + (1 - mask) * x),
        ]


#: Every stage by the name used on the command line and in configs.
STAGES: dict[str, type[Stage]] = {
    "edit": EditStage,
    "reconstruct": ReconstructStage,
    "perceptual": PerceptualStage,
    "denoise": DenoiseStage,
    "classify": ClassifyStage,
    "diat": DiatStage,
    "enhance-local": LocalEnhanceStage,
    "enhance-global": GlobalEnhanceStage,
    "evaluator": EvaluatorStage,
}
