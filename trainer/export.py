"""`diat-studio-train export`: trained networks → ONNX files + the manifest.json the app's registry accepts.

The ONNX files and the manifest are the only contract between trainer and app (diat_studio.core.manifest).
Tensors: NCHW float32 RGB in [-1, 1], dynamic batch; the local enhancer also takes the N×1×S×S mask.

A model folder is written beside its target and swapped in whole (trainer.swap): an export that fails
half-way leaves an installed model exactly as it was. `install_model` copies a model folder into the
per-user models folder (diat_studio.core.paths.user_models_dir) the same way.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from diat_studio.core.errors import ModelError
from diat_studio.core.manifest import MANIFEST_FILE, MAX_TRANSFORM_PASSES, ModelManifest, NetworkSpec
from diat_studio.core.paths import user_models_dir
from diat_studio.core.regions import REGION_MARGIN, RegionKind
from diat_studio.core.registry import ModelRegistry, sha256_file
from trainer.config import TrainConfig, editor_options
from trainer.data import PreparedDataset
from trainer.model_import import is_model_folder, read_model_editor
from trainer.onnx_weights import store_weights_as_float16
from trainer.runs import CHECKPOINT, LOG_FILE, STATUS_FILE, JsonlLog, RunError, recipe_changes, run_config
from trainer.stages import load_trained
from trainer.swap import staged

OPSET = 17
TRANSFORM_FILE = "transform.onnx"
ENHANCER_FILE = "enhancer.onnx"

_ATTRIBUTE_NAMES = {
    ("Eyeglasses", "remove"): "Remove eyeglasses",
    ("Eyeglasses", "add"): "Add eyeglasses",
    ("Mouth_Slightly_Open", "add"): "Open mouth",
    ("Mouth_Slightly_Open", "remove"): "Close mouth",
    ("Male", "remove"): "Male → female",
    ("Male", "add"): "Female → male",
    ("Young", "add"): "Old → young",
    ("Young", "remove"): "Young → old",
}


def export_onnx(module: nn.Module, inputs: dict[str, torch.Tensor], output: str, path: Path) -> None:
    """Export with a dynamic batch dimension (TorchScript-based exporter: no extra dependencies), its
    weights stored as float16 and computed in float32 (trainer.onnx_weights: half the file)."""
    module = module.eval().cpu()
    names = list(inputs)
    dynamic = {name: {0: "batch"} for name in [*names, output]}
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            str(path),
            input_names=names,
            output_names=[output],
            dynamic_axes=dynamic,
            opset_version=OPSET,
            dynamo=False,
        )
    store_weights_as_float16(path)


def export_model(
    transform_run: Path,
    out: Path,
    *,
    enhancer_run: Path | None = None,
    name: str | None = None,
    display_name: str | None = None,
    experimental: bool | None = None,
    passes: int | None = None,
    mirror_average: bool | None = None,
) -> Path:
    """Write transform.onnx (+ enhancer.onnx) and manifest.json into `out`; returns `out`.

    `experimental`, `passes` (the manifest's `transform_passes`) and `mirror_average`: None keeps what the
    folder's manifest says (a re-export keeps the verdict and the way the model was evaluated), else
    False, 1 and False.

    The folder is written beside `out` (starting as a copy of its other files: evaluations, a card) and
    replaces it only when everything is written."""
    transform_run, out = Path(transform_run), Path(out)
    previous: dict[str, Any] = {}
    if (out / MANIFEST_FILE).is_file():
        previous = json.loads((out / MANIFEST_FILE).read_text())
    written = (TRANSFORM_FILE, ENHANCER_FILE, MANIFEST_FILE)
    with staged(out, copy_existing=True, skip=written) as staging:
        _export_into(
            transform_run,
            staging,
            previous,
            enhancer_run=enhancer_run,
            name=name or out.name,
            display_name=display_name,
            experimental=experimental,
            passes=passes,
            mirror_average=mirror_average,
        )
    return out


def _export_into(
    transform_run: Path,
    out: Path,
    previous: dict[str, Any],
    *,
    enhancer_run: Path | None,
    name: str,
    display_name: str | None,
    experimental: bool | None,
    passes: int | None,
    mirror_average: bool | None,
) -> None:
    config = run_config(transform_run)
    stage = config.get("stage")
    if stage not in ("diat", "edit"):
        raise RunError(f"{transform_run} is a '{stage}' run; export needs a 'diat' or 'edit' run")
    dataset = PreparedDataset.open(config["data"])
    template = dataset.template
    size = template.size
    region = config.get("region")
    kind = "local" if region else "global"

    if stage == "edit":  # the residual editor; its weight average when the run kept one
        editor = "plain_editor" if config.get("editor") == "plain" else "editor"
        options = editor_options(config) if editor == "editor" else {}
        transform = load_trained(
            transform_run, "editor_ema", "transform_width", "editor", kind=editor, **options
        )
    else:
        transform = load_trained(transform_run, "transform", "transform_width")
    dummy = torch.zeros(1, 3, size, size)
    export_onnx(transform, {"image": dummy}, "edited", out / TRANSFORM_FILE)
    enhancer_spec = None
    enhancer_config: dict[str, Any] | None = None
    if enhancer_run is not None:
        enhancer_config = run_config(Path(enhancer_run))
        stage = enhancer_config.get("stage")
        if kind == "local" and stage == "enhance-local":
            enhancer = load_trained(enhancer_run, "local_enhancer", "enhancer_width")
            mask = torch.zeros(1, 1, size, size)
            inputs = {"transformed": dummy, "original": dummy, "mask": mask}
        elif kind == "global" and stage == "enhance-global":
            enhancer = load_trained(enhancer_run, "global_enhancer", "enhancer_width")
            inputs = {"transformed": dummy}
        else:
            raise RunError(f"a {kind} attribute needs an enhance-{kind} run, got a '{stage}' run")
        export_onnx(enhancer, inputs, "enhanced", out / ENHANCER_FILE)
        enhancer_spec = NetworkSpec(
            ENHANCER_FILE, sha256_file(out / ENHANCER_FILE), {k: k for k in inputs}, "enhanced"
        )

    attribute = config["attribute"]
    direction = config["direction"]
    model_name = name
    previous_metrics: dict[str, Any] = previous.get("metrics", {})
    if experimental is None:  # re-exporting keeps the quality verdict until someone changes it
        experimental = bool(previous.get("experimental", False))
    if passes is None:  # and the way it was evaluated (an unreadable earlier value: one pass)
        earlier = previous.get("transform_passes", 1)
        valid = (
            isinstance(earlier, int)
            and not isinstance(earlier, bool)
            and 1 <= earlier <= MAX_TRANSFORM_PASSES
        )
        passes = earlier if valid else 1
    if mirror_average is None:
        mirror_average = previous.get("mirror_average", False) is True
    manifest = ModelManifest(
        name=model_name,
        display_name=display_name or _ATTRIBUTE_NAMES.get((attribute, direction), f"{direction} {attribute}"),
        attribute=attribute,
        direction=direction,
        kind=kind,  # type: ignore[arg-type]
        region=RegionKind(region) if region else RegionKind.FACE,
        template=template,
        transform=NetworkSpec(
            TRANSFORM_FILE, sha256_file(out / TRANSFORM_FILE), {"image": "image"}, "edited"
        ),
        enhancer=enhancer_spec,
        value_range=(-1.0, 1.0),
        description=(
            f"DIAT residual editor (the edit recipe) for {direction} {attribute}"
            if stage == "edit"
            else f"{config['variant'].upper()} transform for {direction} {attribute}"
        ),
        training=_training_summary(transform_run, config, enhancer_run, enhancer_config, dataset),
        metrics=previous_metrics,
        licence=dataset.licence,
        experimental=experimental,
        region_margin=_region_margin(config) if kind == "local" else None,
        transform_passes=passes,
        mirror_average=mirror_average,
    )
    manifest.save(out)


def _region_margin(config: dict[str, Any]) -> float:
    """The margin the run's masks were drawn with, always written for a local model (a run made before the
    option existed, or without it, used the region's default)."""
    margin = config.get("region_margin")
    return float(margin) if margin is not None else REGION_MARGIN[RegionKind(config["region"])]


def install_target(name: str, *, replace: bool = False, models_dir: Path | None = None) -> Path:
    """Where `install_model` puts model `name`; refuses an installed model of that name unless `replace`."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"bad model name {name!r}")
    target = Path(models_dir or user_models_dir()) / name
    if target.exists() and not replace:
        raise ValueError(f"a model is already installed at {target}: --force replaces it")
    return target


def install_model(
    folder: Path, *, replace: bool = False, models_dir: Path | None = None, name: str | None = None
) -> Path:
    """Copy a usable model folder into the per-user models folder (swapped in whole); returns it there."""
    folder = Path(folder)
    entry = next((e for e in ModelRegistry([folder.parent]).entries if e.directory == folder), None)
    if entry is None or not entry.available:
        raise ModelError(f"{folder}: not a usable model ({entry.reason if entry else 'no manifest.json'})")
    target = install_target(name or entry.name, replace=replace, models_dir=models_dir)
    with staged(target) as staging:
        shutil.copytree(folder, staging, dirs_exist_ok=True)
    return target


def staged_export(run: Path, *, replace: bool = False, name: str, **settings: Any) -> Path:
    """`export --install` without `--out`: export straight into the per-user models folder."""
    target = install_target(name, replace=replace)
    return export_model(run, target, name=name, **settings)


def _run_summary(run: Path, config: dict[str, Any]) -> dict[str, Any]:
    status_path = run / STATUS_FILE
    status = json.loads(status_path.read_text()) if status_path.is_file() else {}
    losses = [r["losses"] for r in JsonlLog(run / LOG_FILE).read() if "losses" in r]
    return {
        "run": run.name,
        "stage": config.get("stage"),
        "steps": status.get("step", config.get("steps")),
        "seconds": status.get("seconds"),
        "device": status.get("device"),
        "world_size": status.get("world_size"),
        "batch_size": config.get("batch_size"),
        "final_losses": losses[-1] if losses else {},
        **continued_from(config),
        **({"recipe_changes": changes} if (changes := recipe_changes(run)) else {}),
    }


# Runs followed back through `init_transform`: far more than any real chain, and a guard against a loop.
MAX_CHAIN = 16


def continued_from(config: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """{"continued_from": {"run", "steps"}} when an `edit` run started from another edit run's editor
    (a second GPU session: `pack --continue`): the steps of this run alone are not the model's steps. That
    run's own start goes in the same way, nested, so a chain of forks (remove eyeglasses: five runs) is
    counted whole. From an installed model's folder: {"model", …} with that model's own training summary
    (its run, steps and what it was continued from in turn)."""
    init = config.get("init_transform")
    if depth >= MAX_CHAIN:
        return {}
    if config.get("stage") == "edit" and init and is_model_folder(init):
        model = read_model_editor(init)  # an installed model: its own training summary goes on
        history = {k: v for k, v in (model.training.get("transform") or {}).items() if k != "final_losses"}
        return {"continued_from": {"model": model.name, **history}}
    if config.get("stage") != "edit" or not init or not (Path(init) / CHECKPOINT).is_file():
        return {}
    earlier = run_config(Path(init))
    status_path = Path(init) / STATUS_FILE
    status = json.loads(status_path.read_text()) if status_path.is_file() else {}
    steps = torch.load(Path(init) / CHECKPOINT, map_location="cpu", weights_only=False).get("step")
    earlier_chain = continued_from(earlier, depth + 1)
    if not earlier_chain and isinstance(earlier.get("continued_from"), dict):
        earlier_chain = {"continued_from": earlier["continued_from"]}  # an installed model packed for a GPU
    return {
        "continued_from": {
            "run": earlier.get("packed_from") or str(init),
            "steps": steps,
            "batch_size": earlier.get("batch_size"),
            "seconds": status.get("seconds"),
            "device": status.get("device"),
            "world_size": status.get("world_size"),
            **earlier_chain,
        }
    }


def _training_summary(
    transform_run: Path,
    config: dict[str, Any],
    enhancer_run: Path | None,
    enhancer_config: dict[str, Any] | None,
    dataset: PreparedDataset,
) -> dict[str, Any]:
    recipe = config.get("stage") == "edit"
    summary: dict[str, Any] = {
        "variant": "diat" if recipe else config["variant"],
        "gan_loss": config["gan_loss"],
        "widths": {"transform": config["transform_width"], "discriminator": config["discriminator_width"]},
        "weights": {
            # a run made before a weight existed did not use it: its config lacks the key, the default is off
            k: config.get(k, TrainConfig.__dataclass_fields__[k].default)
            for k in (
                "adversarial_weight",
                "identity_weight",
                "embedding_weight",
                "perceptual_weight",
                "smoothness_weight",
                "reconstruction_weight",
                *(
                    (
                        "edit_weight",
                        "colour_weight",
                        "attribute_weight",
                        "region_adversarial_weight",
                        "r1_weight",
                        "pair_weight",
                        "drawn_pair_weight",
                        "keep_weight",
                        "edge_weight",
                        "outside_weight",
                        "inner_detail_weight",
                        "colour_detail_weight",
                        "teacher_weight",
                        "green_weight",
                        "lip_colour_weight",
                        "upper_lip_weight",
                        "occluder_weight",
                        "mouth_detail_weight",
                    )
                    if recipe
                    else ()
                ),
            )
        },
        **(
            {
                "recipe": {
                    "editor": config.get("editor", "residual"),
                    "ema_decay": config.get("ema_decay"),
                    "delta_lowpass": config.get("delta_lowpass", 0.0),
                    "detail_gate": config.get("detail_gate", 0.0),
                    "region_box_scale": config.get("region_box_scale", 1.0),
                    "augment": config.get("augment"),
                    "attribute_classifier": Path(config["attribute_classifier"]).name
                    if config.get("attribute_classifier")
                    else None,
                    "teacher": Path(config["teacher"]).name if config.get("teacher") else None,
                    "discriminator_warmup": int(config.get("discriminator_warmup", 0)),
                }
            }
            if recipe
            else {}
        ),
        "perceptual_regulariser": bool(config.get("denoiser"))
        and float(config.get("perceptual_weight", 1.0)) > 0,
        "dataset": {
            "folder": str(dataset.folder),
            "source": dataset.info.get("source"),
            "faces": len(dataset.crops),
            "split": dataset.info.get("split"),
            "dev_fraction": float(config.get("dev_fraction") or 0.0),
        },
        "transform": _run_summary(transform_run, config),
    }
    if enhancer_run is not None and enhancer_config is not None:
        summary["enhancer"] = {
            **_run_summary(Path(enhancer_run), enhancer_config),
            "width": enhancer_config.get("enhancer_width"),
        }
    return summary
