"""`--init-transform MODEL_FOLDER`: an installed model's editor, rebuilt in torch from its ONNX file, is where
an `edit` run can go on from (the bundled models on a fresh checkout, whose runs are not in it)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from diat_studio.core.manifest import ModelManifest
from diat_studio.core.registry import sha256_file
from tests.trainer.conftest import BUNDLED_MODELS, TINY_EDIT_RUN, train_new_run
from trainer.cli import EXIT_OK, EXIT_USAGE, main
from trainer.model_import import ModelImportError, editor_state, load_model_editor, read_model_editor
from trainer.runs import network_state

MODELS = BUNDLED_MODELS
BUNDLED = sorted(p.name for p in MODELS.iterdir() if (p / "manifest.json").is_file())


def _onnx_output(folder: Path, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(folder / "transform.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["edited"], {"image": x})[0]


@pytest.mark.parametrize("name", BUNDLED)
def test_a_bundled_model_is_rebuilt_in_torch_exactly(name: str) -> None:
    """Every bundled editor, rebuilt from its file with the σ its manifest records, computes what ONNX
    Runtime computes from that file, and it is an edit (not the identity a fresh editor starts at)."""
    folder = MODELS / name
    model = read_model_editor(folder)
    assert model.editor == "residual" and model.transform_width in (16, 32)
    editor = load_model_editor(folder, delta_lowpass=model.delta_lowpass, detail_gate=model.detail_gate)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
    with torch.no_grad():
        rebuilt = editor.eval()(torch.from_numpy(x)).numpy()
    expected = _onnx_output(folder, x)
    assert np.abs(rebuilt - expected).max() < 1e-4
    # an edit: a fresh editor returns the input (0 everywhere); a local editor changes only part of a
    # noise image (the cleaned open mouth: a mean of 0.0096, 18 grey levels at the 99th percentile)
    assert np.percentile(np.abs(expected - x), 99) > 0.05


def _rewrite(folder: Path, *, manifest: dict | None = None, drop: str | None = None) -> None:
    """A copied model changed the way a hand-edited or foreign folder might be (its hash kept valid)."""
    if drop is not None:
        graph = onnx.load(str(folder / "transform.onnx"))
        kept = [t for t in graph.graph.initializer if not t.name.startswith(drop)]
        del graph.graph.initializer[:]
        graph.graph.initializer.extend(kept)
        onnx.save(graph, str(folder / "transform.onnx"))
    raw = json.loads((folder / "manifest.json").read_text())
    raw.update(manifest or {})
    raw["transform"]["sha256"] = sha256_file(folder / "transform.onnx")
    (folder / "manifest.json").write_text(json.dumps(raw))
    ModelManifest.load(folder)  # still a valid model folder


def test_a_model_that_cannot_be_continued_says_why(tmp_path: Path) -> None:
    gated = shutil.copytree(MODELS / "close-mouth", tmp_path / "gated")
    with pytest.raises(ModelImportError, match=r"has a detail gate \(σ 1.5\); the run has none"):
        load_model_editor(gated, delta_lowpass=1.15)
    lacking = shutil.copytree(MODELS / "open-mouth", tmp_path / "lacking")
    _rewrite(lacking, drop="net.10.")
    with pytest.raises(
        ModelImportError, match=r"lacks 2 of the editor's weights \(net.10.bias, net.10.weight\)"
    ):
        load_model_editor(lacking, delta_lowpass=0.7)
    paper = shutil.copytree(MODELS / "open-mouth", tmp_path / "paper")
    raw = json.loads((paper / "manifest.json").read_text())
    raw["training"]["transform"]["stage"] = "diat"
    _rewrite(paper, manifest={"training": raw["training"]})
    with pytest.raises(ModelImportError, match="not trained by the edit recipe"):
        read_model_editor(paper)
    assert set(editor_state(MODELS / "open-mouth")) >= {"net.0.0.weight", "net.10.bias"}


def test_an_edit_run_goes_on_from_an_installed_model(capsys, tmp_path: Path, dataset_dir: Path) -> None:
    """The checks take the model's width and σ components, say so, and warn when the run edits something
    else; the run starts from the model's editor (with the editor's learning rate 0 it still is that editor
    after training) and its export records what it was continued from."""
    glasses = MODELS / "remove-eyeglasses"
    base = [
        "--stage", "edit", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--direction", "remove",
        "--region", "eyes", "--gan-loss", "hinge", "--steps", "2",
    ]  # fmt: skip
    assert main(["train", *base, "--init-transform", str(glasses), "--dry-run"]) == EXIT_OK
    out, err = capsys.readouterr()
    assert json.loads(out)["transform_width"] == 16
    assert f"transform_width = 16, taken from --init-transform {glasses}" in err and "WARNING" not in err
    mouth = [*base[:-6], "--region", "mouth", "--gan-loss", "hinge", "--steps", "2"]
    closing = ["--init-transform", str(MODELS / "close-mouth"), "--dry-run"]
    assert main(["train", *mouth, *closing]) == EXIT_OK
    out, err = capsys.readouterr()
    config = json.loads(out)
    assert (config["transform_width"], config["delta_lowpass"], config["detail_gate"]) == (32, 1.15, 1.5)
    assert "detail_gate = 1.5, taken from --init-transform" in err
    assert "was trained to Mouth_Slightly_Open remove mouth; this run trains Eyeglasses remove mouth" in err
    assert main(
        ["train", *base, "--init-transform", str(glasses), "--transform-width", "8", "--dry-run"]
    ) == (EXIT_USAGE)
    assert "--transform-width 8 does not match --init-transform" in capsys.readouterr().err

    run = train_new_run(
        tmp_path / "runs", (*base, "--init-transform", str(glasses), "--lr", "0"), TINY_EDIT_RUN
    )
    model = editor_state(glasses)
    for network in ("editor", "editor_ema"):
        trained = network_state(run, network)
        assert all(torch.allclose(trained[key], model[key]) for key in model), network
    folder = tmp_path / "models" / "glasses-continued"
    assert main(["export", str(run), "--out", str(folder)]) == EXIT_OK
    training = json.loads((folder / "manifest.json").read_text())["training"]
    earlier = json.loads((glasses / "manifest.json").read_text())["training"]["transform"]
    assert training["transform"]["continued_from"]["model"] == "remove-eyeglasses"
    assert training["transform"]["continued_from"]["steps"] == earlier["steps"]
    assert training["recipe"]["editor"] == "residual"
    cards = tmp_path / "cards"
    script = [sys.executable, "scripts/write_model_card.py", str(folder), "--out", str(cards)]
    subprocess.run(script, cwd=MODELS.parents[1], check=True, capture_output=True)
    card = (cards / "glasses-continued.md").read_text().splitlines()
    rows = [line for line in card if line.startswith("| transform")]
    labels = [row.split(" | ")[0] for row in rows]
    assert labels[-2:] == [
        "| transform, the installed model remove-eyeglasses",
        "| transform (edit)",
    ]  # the model's own run (after the runs it went on from, if any), then the run that went on from it
    assert all(label == "| transform, the session it continues" for label in labels[:-2])
