"""An installed model's editor back into torch: `--init-transform MODEL_FOLDER` for an `edit` run.

The ONNX file and its manifest are the contract between trainer and app, and they are what a fresh
checkout (or a user) has: the run folders that trained the bundled models stay on the machine that
trained them. The exporter keeps every parameter of the residual editor as a named initializer
(`net.3.body.0.0.weight`, …; float16 with a `.float16` suffix, trainer.onnx_weights), so the editor is
rebuilt exactly, to float16 rounding, from the file the app runs. What the file does not hold: the
discriminators and the optimiser's moments. A run continued from a model starts those afresh. The editor
is one pass on one view: a manifest's `transform_passes` and `mirror_average` are how the app applies it,
and a teacher built from the folder teaches its single, unmirrored pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import numpy_helper

from diat_studio.core.manifest import MANIFEST_FILE, ManifestError, ModelManifest
from trainer.networks import build_network
from trainer.runs import CONFIG_FILE

#: The suffix trainer.onnx_weights gives a weight stored as float16 (a Cast to float32 follows it).
FLOAT16_SUFFIX = ".float16"


class ModelImportError(ValueError):
    """The folder is not an installed model whose editor can be continued."""


@dataclass(frozen=True)
class ModelEditor:
    """What an installed model says about its editor (from manifest.json, checked against the file)."""

    folder: Path
    name: str
    attribute: str
    direction: str
    region: str | None
    editor: str  # "residual" or "plain"
    transform_width: int
    discriminator_width: int | None
    delta_lowpass: float
    detail_gate: float
    training: dict[str, Any]

    @property
    def network(self) -> str:
        return "editor" if self.editor == "residual" else "plain_editor"

    def run_settings(self) -> dict[str, Any]:
        """The model as the fields of an `edit` run's config.json that the checks and `load_trained` read."""
        return {
            "stage": "edit",
            "attribute": self.attribute,
            "direction": self.direction,
            "region": self.region,
            "editor": self.editor,
            "transform_width": self.transform_width,
            "delta_lowpass": self.delta_lowpass,
            "detail_gate": self.detail_gate,
        }


def is_model_folder(path: str | Path) -> bool:
    """An installed model's folder (a manifest), not a run folder (a config.json)."""
    return (Path(path) / MANIFEST_FILE).is_file() and not (Path(path) / CONFIG_FILE).is_file()


def read_model_editor(folder: str | Path) -> ModelEditor:
    """The editor settings of the model in `folder`, or ModelImportError saying why it cannot be continued."""
    folder = Path(folder)
    try:
        manifest = ModelManifest.load(folder)
    except ManifestError as exc:
        raise ModelImportError(str(exc)) from None
    training = manifest.training or {}
    transform = training.get("transform") or {}
    if transform.get("stage") != "edit":
        raise ModelImportError(
            f"{folder}: its transform was not trained by the edit recipe (stage {transform.get('stage')!r}); "
            "only a residual or plain editor can be continued"
        )
    path = folder / manifest.transform.file
    if not path.is_file():
        raise ModelImportError(f"{folder}: no {manifest.transform.file}")
    recipe = training.get("recipe") or {}
    widths = training.get("widths") or {}
    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # protobuf's DecodeError and OS errors alike: a file that is not ONNX
        raise ModelImportError(f"{path}: not a readable ONNX file ({exc})") from None
    editor = recipe.get("editor") or ("plain" if any(n.op_type == "Tanh" for n in graph.node) else "residual")
    first = _initializers(graph).get("net.0.0.weight")
    if first is None:
        raise ModelImportError(f"{path}: no editor weights (net.0.0.weight) in the file")
    width = int(first.shape[0])
    if widths.get("transform") not in (None, width):
        raise ModelImportError(
            f"{folder}: manifest.json says width {widths['transform']}, its transform has width {width}"
        )
    return ModelEditor(
        folder=folder,
        name=manifest.name,
        attribute=manifest.attribute,
        direction=manifest.direction,
        region=manifest.region.value if manifest.kind == "local" else None,
        editor=editor,
        transform_width=width,
        discriminator_width=widths.get("discriminator"),
        delta_lowpass=float(recipe.get("delta_lowpass") or 0.0),
        detail_gate=float(recipe.get("detail_gate") or 0.0),
        training=training,
    )


def _initializers(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for tensor in graph.initializer:
        name = tensor.name.removesuffix(FLOAT16_SUFFIX)
        weights[name] = numpy_helper.to_array(tensor).astype(np.float32)
    return weights


def editor_state(folder: str | Path) -> dict[str, torch.Tensor]:
    """The editor's parameters as the state dict they were exported from (float32)."""
    manifest = ModelManifest.load(Path(folder))
    graph = onnx.load(str(Path(folder) / manifest.transform.file), load_external_data=False).graph
    return {name: torch.from_numpy(value) for name, value in _initializers(graph).items()}


def load_model_editor(folder: str | Path, **options: float) -> torch.nn.Module:
    """The model's editor as a torch module, built with `options` (the run's low-pass and gate σ; the
    checks give a run the model's own unless it asks for others). Every parameter of the network must be
    in the file; a gate the model lacks keeps its start, as with a run."""
    model = read_model_editor(folder)
    module = build_network(model.network, width=model.transform_width, **options)
    state = editor_state(folder)
    gated = any(key.startswith("detail_gate.") for key in state)
    if gated and not options.get("detail_gate"):
        raise ModelImportError(
            f"{folder}: its editor has a detail gate (σ {model.detail_gate:g}); the run has none"
        )
    expected = set(module.state_dict())
    if not gated:
        expected = {key for key in expected if not key.startswith("detail_gate.")}
    missing = sorted(expected - set(state))
    if missing:
        raise ModelImportError(
            f"{folder}: its transform lacks {len(missing)} of the editor's weights "
            f"({', '.join(missing[:3])}): "
            "exported by another version of the trainer?"
        )
    module.load_state_dict({key: value for key, value in state.items() if key in expected})
    return module
