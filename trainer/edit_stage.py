"""The `edit` stage: DIAT's objective (GAN attribute loss + perceptual identity loss) with the recipe that
makes it converge cleanly on a small budget. Each component is its own tested unit and can be switched
off in the config for the ablation (docs/ABLATION.md):

- residual editor T (trainer.networks.ResidualEditor): output = x + Δ (global) or x + m ⊙ Δ (local, m the
  region's soft mask); starts at the identity; `edit_weight` penalises |Δ| and its total variation;
  `delta_lowpass` passes Δ through a fixed Gaussian (no pixel-scale pattern of its own);
  `colour_weight` penalises low-frequency chroma in Δ (trainer.losses.colour_drift); for local edits
  `edge_weight` penalises Δ where the mask falls off and `outside_weight` the raw Δ outside the region
  (trainer.losses.mask_edge_penalty, outside_mask_penalty); `inner_detail_weight` asks a mouth edit to
  hide the fine detail between the source's inner lips (trainer.losses.hidden_detail_penalty: the teeth
  a closed mouth hides);
- D with spectral normalisation and the hinge loss (trainer.networks.SpectralDiscriminator), a lazy R1
  penalty every `r1_every` steps, DiffAugment (trainer.augment, off by default) on real and edited faces
  alike, and for local edits a second D on the region (mouth or eye band) cut out at the crop's native
  resolution; both may start from an earlier edit run's (`init_discriminator`);
- an exponential moving average of T (trainer.ema) — the network that is sampled and exported;
- an attribute loss from a frozen classifier of our own (a `classify` run: D's architecture, trained on
  labels), so that T is pulled towards the attribute from the first step — never the evaluator;
- identity: the dlib face-recognition features and descriptor of DIAT (trainer.identity);
- remove eyeglasses: synthetic pairs (trainer.glasses) — glasses drawn onto glasses-free faces, T asked
  to return the clean face (`pair_weight`) — beside the adversarial loss on real glasses faces;
- faces that already have the target attribute kept as they are (`keep_weight`, the identity-mapping loss
  of CycleGAN / StarGAN) — one more T pass, on D's real batch;
- `colour_detail_weight` penalises the chroma of Δ's finest detail (trainer.losses.colour_detail: green
  and magenta specks on drawn teeth); `green_weight` a mouth's pixels greener than red
  (trainer.losses.green_penalty: a hue prior against the mint-green teeth open mouth drew);
  `lip_colour_weight` asks a closed mouth to be as red where the teeth were as the lips around them
  (trainer.losses.lip_colour_penalty: the grey and olive mouths close mouth made of broad smiles), and an
  opened mouth to keep its lips' own redness (trainer.losses.opened_lips_penalty: pale lipstick);
  `upper_lip_weight` an opened mouth's upper lip its colour where it is (trainer.losses.upper_lip_penalty);
  `mouth_detail_weight` an edited mouth as finely detailed as the photo around it allows
  (trainer.losses.soft_mouth_penalty: the soft patch close mouth left on sharp photos);
- a frozen teacher (`teacher`, `teacher_weight`; an edit run or an installed model): T's edit held to the
  teacher's inside the region (trainer.losses.teacher_penalty), so a shipped editor can be cleaned by a new
  term without a discriminator — with `adversarial_weight` 0, D is neither trained nor asked;
- mouth edits: a hand or an object drawn over the mouth (trainer.occluders) on a second, half-size batch,
  T asked to leave it unchanged (`occluder_weight`): the open-mouth editor drew a mouth through fingers;
- a discriminator warm-up (`discriminator_warmup`): the first N steps train D alone against the editor as
  it starts, for a run continued from a model whose own D is gone.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from diat_studio.core.regions import RegionKind
from trainer.augment import DiffAugment
from trainer.config import editor_options
from trainer.cpu_features import cpu_has_native_bf16
from trainer.data import (
    inner_mouth_masks,
    lip_ring_masks,
    mouth_detail_masks,
    to_tensor,
    to_uint8,
    upper_lip_bands,
)
from trainer.ema import WeightAverage
from trainer.glasses import add_glasses_batch
from trainer.identity import SAME_PERSON_DISTANCE
from trainer.losses import (
    colour_detail,
    colour_drift,
    drawn_pixels_penalty,
    edit_magnitude,
    feature_distance,
    gan_losses,
    green_penalty,
    hidden_detail_penalty,
    lip_colour_penalty,
    mask_edge_penalty,
    opened_lips_penalty,
    outside_mask_penalty,
    r1_penalty,
    soft_mouth_penalty,
    teacher_penalty,
    unchanged_penalty,
    upper_lip_penalty,
)
from trainer.model_import import is_model_folder, load_model_editor, read_model_editor
from trainer.networks import PlainEditor, ResidualEditor, SpectralDiscriminator
from trainer.occluders import occlude_batch
from trainer.runs import network_state, run_config
from trainer.stage_base import Stage, attribute_rows, load_trained

#: The weights of the terms computed on T's edit of the real source faces (a step with all of them at 0,
#: no guide and no teacher, trains on the synthetic pairs alone: `EditStage.pairs_only`).
SOURCE_TERMS = (
    "adversarial_weight",
    "identity_weight",
    "embedding_weight",
    "edit_weight",
    "colour_weight",
    "edge_weight",
    "outside_weight",
    "inner_detail_weight",
    "lip_colour_weight",
    "mouth_detail_weight",
    "upper_lip_weight",
    "colour_detail_weight",
    "green_weight",
    "occluder_weight",
)

#: Region patches judged by the region D: (landmark indices, box width and height in eye distances,
#: patch height and width in pixels at a 128 px crop — about the crop's own resolution there).
REGION_BOXES: dict[RegionKind, tuple[tuple[int, ...], float, float, int, int]] = {
    RegionKind.MOUTH: (tuple(range(48, 68)), 1.5, 1.0, 32, 48),
    RegionKind.EYES: (tuple(range(36, 48)), 2.4, 0.9, 24, 64),
}


def region_patches(
    images: torch.Tensor, landmarks: torch.Tensor, region: RegionKind, box_scale: float = 1.0
) -> torch.Tensor:
    """Cut the region's box (centred on its landmarks, sized by the eye distance, × `box_scale`) out of each
    image, bilinearly, at a patch size scaled with the crop and the box, so at the same resolution
    whatever the box (differentiable: gradients reach T)."""
    indices, box_w, box_h, patch_h, patch_w = REGION_BOXES[region]
    box_w, box_h = box_w * box_scale, box_h * box_scale
    n, _, h, w = images.shape
    scale = h / 128 * box_scale
    marks = landmarks.to(images.device, torch.float32)
    eye_distance = (marks[:, 42:48].mean(1) - marks[:, 36:42].mean(1)).norm(dim=1)
    centre = marks[:, list(indices)].mean(1)
    theta = torch.zeros(n, 2, 3, device=images.device)
    theta[:, 0, 0] = box_w * eye_distance / w
    theta[:, 1, 1] = box_h * eye_distance / h
    theta[:, 0, 2] = (centre[:, 0] + 0.5) / w * 2 - 1
    theta[:, 1, 2] = (centre[:, 1] + 0.5) / h * 2 - 1
    size = (n, images.shape[1], round(patch_h * scale), round(patch_w * scale))
    grid = F.affine_grid(theta, list(size), align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)


def load_editor(source: str | Path, options: dict[str, float] | None = None) -> torch.nn.Module:
    """The editor of an edit run (its weight average) or of an installed model's folder, built with
    `options` (a residual editor's low-pass and gate σ); None: the ones it was trained with."""
    if is_model_folder(source):
        if options is None:
            model = read_model_editor(source)
            options = {"delta_lowpass": model.delta_lowpass, "detail_gate": model.detail_gate}
        return load_model_editor(source, **options)
    config = run_config(Path(source))
    residual = config.get("editor", "residual") == "residual"
    if options is None:
        options = editor_options(config) if residual else {}
    return load_trained(
        source,
        "editor_ema",
        "transform_width",
        fallback="editor",
        kind="editor" if residual else "plain_editor",
        **options,
    )


class EditStage(Stage):
    """Joint training of the residual editor T against D (and the region D), see the module docstring."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        config = self.config
        if not config.attribute:
            raise ValueError("stage 'edit' needs --attribute")
        self.region = RegionKind(config.region) if config.region else None
        options = editor_options(config.to_dict()) if config.editor == "residual" else {}
        if config.editor != "residual" and (config.delta_lowpass > 0 or config.detail_gate > 0):
            raise ValueError("--delta-lowpass and --detail-gate are components of the residual editor")
        # this run's low-pass and gate, whatever the earlier run used (a gate it lacked keeps its start)
        if config.init_transform:
            editor = load_editor(config.init_transform, options)
        elif config.editor == "residual":
            editor = ResidualEditor(config.transform_width, **options)
        else:
            editor = PlainEditor(config.transform_width)
        lr_d = config.lr_discriminator if config.lr_discriminator is not None else config.lr
        betas = (0.0, 0.99)
        self.T = self.add_network("editor", editor.to(memory_format=torch.channels_last), config.lr, betas)
        self.D = self.add_network(
            "discriminator", SpectralDiscriminator(config.discriminator_width), lr_d, betas
        )
        self.region_D = None
        if self.region is not None and config.region_adversarial_weight > 0:
            self.region_D = self.add_network(
                "region_discriminator",
                SpectralDiscriminator(config.discriminator_width, blocks=3),
                lr_d,
                betas,
            )
        if config.init_discriminator:
            self._load_discriminators(config.init_discriminator)
        self.ema = (
            WeightAverage(self.networks["editor"], config.ema_decay, ramp=not config.init_transform)
            if config.ema_decay > 0
            else None
        )
        self.teacher = (
            self.frozen(load_editor(config.teacher).to(memory_format=torch.channels_last))
            if config.teacher_weight > 0
            else None
        )
        self.classifier = None
        if config.attribute_classifier and config.attribute_weight > 0:
            self.classifier = self.frozen(
                load_trained(config.attribute_classifier, "discriminator", "discriminator_width")
            )
        self.augment = (
            DiffAugment(config.augment_policies, seed=config.seed * 7 + self.dist.rank)
            if config.augment_policies
            else None
        )
        self.gan_d, self.gan_g = gan_losses(config.gan_loss)
        target = config.target_value
        self.source = self.sampler("source", attribute_rows(self, 1 - target), region=self.region)
        self.target = self.sampler("target", attribute_rows(self, target), region=self.region)
        self.pairs = None
        if config.pair_weight > 0 or config.drawn_pair_weight > 0:
            if config.attribute != "Eyeglasses" or target != 0:
                raise ValueError(
                    "--pair-weight / --drawn-pair-weight (synthetic glasses pairs) are for removing "
                    "Eyeglasses only"
                )
            self.pairs = self.sampler("pairs", attribute_rows(self, 0), region=self.region)
            self.pair_rng = np.random.default_rng(config.seed + 31 * self.dist.rank)
        self.occluder_rng = np.random.default_rng(config.seed + 37 * self.dist.rank)
        self.cpu_bf16 = cpu_has_native_bf16()
        self.fixed = self.fixed_rows(config.attribute, 1 - target)
        #: A warm start on the synthetic pairs alone (every weight on the real source faces at 0): the
        #: step skips T's pass over those faces, which nothing would learn from — half the step's time.
        self.pairs_only = (
            self.pairs is not None
            and not any(getattr(config, name) > 0 for name in SOURCE_TERMS)
            and self.classifier is None
            and self.teacher is None
        )

    # -- pieces ----------------------------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        # bf16 on a CPU without bf16 instructions is an order of magnitude slower (trainer.cpu_features)
        if self.config.amp and self.device.type == "cpu" and self.cpu_bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return super().autocast()

    def edit(self, editor: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None):
        """(edited face, the applied Δ): x + Δ, or x + m ⊙ Δ for a local edit."""
        out, applied, _ = self.edit_with_raw(editor, x, mask)
        return out, applied

    def edit_with_raw(self, editor: torch.nn.Module, x: torch.Tensor, mask: torch.Tensor | None):
        """(edited face, the applied Δ, the raw Δ before the mask)."""
        module = editor.module if hasattr(editor, "module") else editor
        raw = module.delta(x.contiguous(memory_format=torch.channels_last)).float()
        delta = raw if mask is None else mask * raw
        return torch.clamp(x + delta, -1.0, 1.0), delta, raw

    def judge(self, images: torch.Tensor, landmarks: torch.Tensor) -> list[torch.Tensor]:
        """D's logits (and the region D's) on augmented images."""
        views = [(self.D, images)]
        if self.region_D is not None and self.region is not None:
            views.append(
                (self.region_D, region_patches(images, landmarks, self.region, self.config.region_box_scale))
            )
        logits = []
        for network, view in views:
            if self.augment is not None:
                view = self.augment(view)
            logits.append(network(view)[0].float())
        return logits

    # -- the step --------------------------------------------------------------------------------------------

    def step(self, step: int) -> dict[str, float]:
        config = self.config
        if self.pairs_only:  # no term reads the real source faces: not even their batch is loaded
            return self._pairs_step()
        source = self.to_device(self.source.next())
        real_batch = self.to_device(self.target.next())
        x, mask = source["image"], source.get("mask")
        real = real_batch["image"]
        losses: dict[str, float] = {}

        if step <= config.discriminator_warmup:
            # D alone learns the starting editor's tells; T and its average wait (no T loss is computed)
            with torch.no_grad(), self.autocast():
                out, _ = self.edit(self.T, x, mask)
            losses.update(self._discriminator_step(step, real, real_batch["landmarks"], out, source))
            with torch.no_grad(), self.autocast():
                fooled = sum(self.gan_g(logit) for logit in self.judge(out, source["landmarks"]))
            losses["adversarial"] = float(fooled)
            return losses

        # T runs once per step: its output, detached, is D's fake; with the graph kept, T's own loss
        # (after D's update, as in the alternating scheme) — one T forward fewer than two separate passes
        with self.autocast():
            out, delta, raw_delta = self.edit_with_raw(self.T, x, mask)

        # D (and region D): real faces with the target value vs edited faces; with the adversarial term
        # off (a run held by its teacher) nothing would use what D learns, so D is left as it is
        adversarial_on = config.adversarial_weight > 0
        if adversarial_on:
            losses.update(self._discriminator_step(step, real, real_batch["landmarks"], out, source))

        # T: fool D, keep the identity, have the attribute, change little and keep the colour
        discriminators = [self.networks["discriminator"]] + (
            [self.networks["region_discriminator"]] if self.region_D else []
        )
        single = self.dist.world == 1
        if single:
            for network in discriminators:
                network.requires_grad_(False)
        with self.autocast():
            adversarial = (
                sum(self.gan_g(logit) for logit in self.judge(out, source["landmarks"]))
                if adversarial_on
                else torch.zeros((), device=out.device)
            )
            if config.identity_weight > 0 or config.embedding_weight > 0:
                out_features, out_descriptor = self.identity(out)
                with torch.no_grad():
                    x_features, x_descriptor = self.identity(x)
                identity = feature_distance(out_features, x_features)
                embedding = F.mse_loss(out_descriptor, x_descriptor) * out_descriptor.shape[1]
            else:  # a run trained on pairs alone: the face recogniser's two passes would weigh nothing
                identity = embedding = torch.zeros((), device=out.device)
            loss = (
                config.adversarial_weight * adversarial
                + config.identity_weight * identity
                + config.embedding_weight * embedding
                + config.edit_weight * edit_magnitude(delta)
                + config.colour_weight * colour_drift(delta)
            )
            if self.classifier is not None:
                # with DiffAugment on, through the same random augmentation as D's inputs: a frozen
                # classifier is fooled by a faint pixel pattern (an adversarial example) within a few dozen
                # steps. The ablation found the colour jitter here breeds saturated colour patterns
                # instead (docs/ABLATION.md), so DiffAugment is off by default.
                logits, _ = self.classifier(self.augment(out) if self.augment is not None else out)
                wanted = torch.full_like(logits.float(), float(config.target_value))
                attribute = F.binary_cross_entropy_with_logits(logits.float(), wanted)
                loss = loss + config.attribute_weight * attribute
                losses["attribute"] = attribute.item()
            if config.edge_weight > 0 and mask is not None:
                edge = mask_edge_penalty(delta, mask)
                loss = loss + config.edge_weight * edge
                losses["edge"] = edge.item()
            if config.outside_weight > 0 and mask is not None:
                outside = outside_mask_penalty(raw_delta, mask)
                loss = loss + config.outside_weight * outside
                losses["outside"] = outside.item()
            if config.inner_detail_weight > 0 or config.lip_colour_weight > 0:
                marks = source["landmarks"].cpu().numpy()
                inner = inner_mouth_masks(marks, x.shape[-1])
                inner_t = torch.from_numpy(inner).to(out.device)
            if config.inner_detail_weight > 0:
                hidden = hidden_detail_penalty(out, inner_t)
                loss = loss + config.inner_detail_weight * hidden
                losses["inner_detail"] = hidden.item()
            if config.lip_colour_weight > 0:
                lips = torch.from_numpy(lip_ring_masks(marks, x.shape[-1], inner)).to(out.device)
                if config.target_value == 0:  # closing: where the teeth were, as red as the lips
                    unred = lip_colour_penalty(out, x, inner_t, lips)
                else:  # opening: the lips' own redness, wherever they went in the region
                    assert mask is not None
                    unred = opened_lips_penalty(out, x, lips, mask)
                loss = loss + config.lip_colour_weight * unred
                losses["lip_colour"] = unred.item()
            if config.mouth_detail_weight > 0:
                mouths, skin = mouth_detail_masks(source["landmarks"].cpu().numpy(), x.shape[-1])
                soft = soft_mouth_penalty(
                    out, x, torch.from_numpy(mouths).to(out.device), torch.from_numpy(skin).to(out.device)
                )
                loss = loss + config.mouth_detail_weight * soft
                losses["mouth_detail"] = soft.item()
            if config.upper_lip_weight > 0:
                bands = upper_lip_bands(source["landmarks"].cpu().numpy(), x.shape[-1])
                upper = upper_lip_penalty(out, x, torch.from_numpy(bands).to(out.device))
                loss = loss + config.upper_lip_weight * upper
                losses["upper_lip"] = upper.item()
            if config.colour_detail_weight > 0:
                specks = colour_detail(delta, mask)
                loss = loss + config.colour_detail_weight * specks
                losses["colour_detail"] = specks.item()
            if config.green_weight > 0 and mask is not None:
                green = green_penalty(out, x, mask)
                loss = loss + config.green_weight * green
                losses["green"] = green.item()
            if self.teacher is not None:
                with torch.no_grad():
                    taught, _ = self.edit(self.teacher, x, mask)
                held = teacher_penalty(out, taught, mask)
                loss = loss + config.teacher_weight * held
                losses["teacher"] = held.item()
            if config.keep_weight > 0:
                kept = self._kept_loss(real_batch)
                loss = loss + config.keep_weight * kept
                losses["kept"] = kept.item()
            if self.pairs is not None:
                pair, drawn_pixels = self._pair_loss()
                loss = loss + config.pair_weight * pair + config.drawn_pair_weight * drawn_pixels
                losses["pairs"] = pair.item()
                losses["drawn_pixels"] = drawn_pixels.item()
            if config.occluder_weight > 0:
                covered = self._occluder_loss()
                loss = loss + config.occluder_weight * covered
                losses["occluder"] = covered.item()
        self.optimise(self.optimizers["editor"], loss)
        if single:
            for network in discriminators:
                network.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.networks["editor"])
        losses.update(
            adversarial=adversarial.item(),  # type: ignore[union-attr]
            identity=identity.item(),
            embedding=embedding.item(),
            delta=delta.abs().mean().item(),
            t_total=loss.item(),
        )
        return losses

    def _kept_loss(self, real_batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Faces that already have the target attribute: T's Δ on them (trainer.losses.unchanged_penalty)."""
        _, kept_delta = self.edit(self.T, real_batch["image"], real_batch.get("mask"))
        return unchanged_penalty(kept_delta, real_batch.get("mask"))

    def _pairs_step(self) -> dict[str, float]:
        """A step on the synthetic glasses pairs (and the faces that keep their look, with `keep_weight`)."""
        config = self.config
        losses: dict[str, float] = {}
        with self.autocast():
            pair, drawn_pixels = self._pair_loss()
            loss = config.pair_weight * pair + config.drawn_pair_weight * drawn_pixels
            if config.keep_weight > 0:
                kept = self._kept_loss(self.to_device(self.target.next()))
                loss = loss + config.keep_weight * kept
                losses["kept"] = kept.item()
        self.optimise(self.optimizers["editor"], loss)
        if self.ema is not None:
            self.ema.update(self.networks["editor"])
        losses.update(pairs=pair.item(), drawn_pixels=drawn_pixels.item(), t_total=loss.item())
        return losses

    def _discriminator_step(
        self,
        step: int,
        real: torch.Tensor,
        real_landmarks: torch.Tensor,
        out: torch.Tensor,
        source: dict[str, torch.Tensor],
    ) -> dict[str, float]:
        """One update of D (and the region D): real faces with the target value vs edited faces."""
        config = self.config
        losses: dict[str, float] = {}
        with self.autocast():
            real_logits = self.judge(real, real_landmarks)
            fake_logits = self.judge(out.detach(), source["landmarks"])
            d_loss = sum(self.gan_d(r, f) for r, f in zip(real_logits, fake_logits, strict=True))
        d_optimisers = [self.optimizers["discriminator"]]
        if self.region_D is not None:
            d_optimisers.append(self.optimizers["region_discriminator"])
        for optimiser in d_optimisers:
            optimiser.zero_grad(set_to_none=True)
        d_loss.backward()  # type: ignore[union-attr]
        if config.r1_weight > 0 and step % config.r1_every == 0:
            r1 = self._r1(real, real_landmarks)
            (config.r1_weight * config.r1_every * r1).backward()
            losses["r1"] = r1.item()
        for optimiser in d_optimisers:
            optimiser.step()
        losses["d"] = d_loss.item()  # type: ignore[union-attr]
        return losses

    def _load_discriminators(self, run: str) -> None:
        """D and the region D from an earlier edit run of the same attribute (`init_discriminator`): an
        editor continued with a new component (a detail gate) then meets a D that already knows its tells,
        instead of a fresh one whose first few hundred steps undo the editor (run 00025's samples)."""
        for name in ("discriminator", "region_discriminator"):
            if name in self.networks:
                self.networks[name].load_state_dict(network_state(Path(run), name))

    def _r1(self, real: torch.Tensor, landmarks: torch.Tensor) -> torch.Tensor:
        """Lazy R1 on the real faces, in float32 and without augmentation (the gradient is wrt the image)."""
        real = real.detach().requires_grad_(True)
        penalty = r1_penalty(self.D(real)[0], real)
        if self.region_D is not None and self.region is not None:
            patches = region_patches(
                real.detach(), landmarks, self.region, self.config.region_box_scale
            ).requires_grad_(True)
            penalty = penalty + r1_penalty(self.region_D(patches)[0], patches)
        return penalty

    def _pair_loss(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Glasses drawn onto glasses-free faces: T must give back the clean face — (L1 in the edit region,
        L1 over the drawn pixels alone: trainer.losses.drawn_pixels_penalty)."""
        assert self.pairs is not None
        rows = np.sort(self.pairs.rng.choice(self.pairs.rows, self.config.batch_size))
        batch = self.to_device(self.pairs.load(rows))  # the clean faces (targets) and their masks
        clean = np.asarray(self.dataset.crops[rows])
        drawn, drawn_mask = add_glasses_batch(clean, self.dataset.landmarks[rows], self.pair_rng)
        drawn_t = to_tensor(drawn).to(self.device)
        out, _ = self.edit(self.T, drawn_t, batch.get("mask"))
        weight = batch["mask"] if "mask" in batch else torch.ones_like(out[:, :1])
        region = ((out - batch["image"]).abs() * weight).sum() / (weight.sum() * 3).clamp_min(1.0)
        drawn = torch.from_numpy(drawn_mask)[:, None].to(out.device)
        return region, drawn_pixels_penalty(out, batch["image"], drawn)

    def _occluder_loss(self) -> torch.Tensor:
        """A hand or an object drawn over the mouth of half a batch of source faces: T must leave the
        occluder's pixels as they are (mean |Δ| over the occluder's mask)."""
        count = max(self.config.batch_size // 2, 1)
        rows = np.sort(self.source.rng.choice(self.source.rows, count))
        batch = self.to_device(self.source.load(rows))
        drawn, covered = occlude_batch(
            np.asarray(self.dataset.crops[rows]), self.dataset.landmarks[rows], self.occluder_rng
        )
        with self.autocast():
            _, delta = self.edit(self.T, to_tensor(drawn).to(self.device), batch.get("mask"))
        return unchanged_penalty(delta.float(), torch.from_numpy(covered)[:, None].to(self.device))

    # -- what the loop samples, checkpoints and exports ------------------------------------------------------

    @property
    def exported(self) -> torch.nn.Module:
        return self.ema.average if self.ema is not None else self.networks["editor"]

    def sample_columns(self) -> list[np.ndarray]:
        batch = self.fixed_batch(self.fixed, self.region)
        x = batch["image"]
        out, _ = self.edit(self.exported, x, batch.get("mask"))
        return [to_uint8(x), to_uint8(out)]

    def heldout_metrics(self) -> dict[str, float]:
        batch = self.fixed_batch(self.fixed, self.region)
        x = batch["image"]
        out, delta = self.edit(self.exported, x, batch.get("mask"))
        distance = (self.identity.descriptors(out) - self.identity.descriptors(x)).norm(dim=1)
        metrics = {
            "heldout_identity_distance": float(distance.mean()),
            "heldout_identity_kept": float((distance < SAME_PERSON_DISTANCE).float().mean()),
            "heldout_delta": float(delta.abs().mean()),
        }
        if self.classifier is not None:
            logits, _ = self.classifier(out)
            metrics["heldout_guide_target_rate"] = float(
                ((logits > 0).long() == self.config.target_value).float().mean()
            )
        return metrics

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if self.ema is not None:
            state["networks"]["editor_ema"] = self.ema.average.state_dict()
            state["ema_updates"] = self.ema.updates
        if self.augment is not None:
            state["augment_rng"] = self.augment.state()
        if self.pairs is not None:
            state["pair_rng"] = self.pair_rng.bit_generator.state
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if self.ema is not None:
            self.ema.load_state_dict(
                {"updates": state["ema_updates"], "average": state["networks"]["editor_ema"]}
            )
        if self.augment is not None and "augment_rng" in state:
            self.augment.restore(state["augment_rng"])
        if self.pairs is not None and "pair_rng" in state:
            self.pair_rng.bit_generator.state = state["pair_rng"]
