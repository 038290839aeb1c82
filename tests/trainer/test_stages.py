"""A CPU smoke run of every stage on real crops, chained the way the DIAT schedule chains them, then
export through to the app and evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from PIL import Image

from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.registry import ModelRegistry
from tests.trainer.conftest import train_new_run
from trainer.cli import EXIT_OK, main
from trainer.quality import QUALITY_BAR
from trainer.runs import CHECKPOINT, JsonlLog, network_state
from trainer.stages import STAGES, load_trained

#: Evaluation work sizes for the tiny dataset: seconds, not minutes.
SMALL_EVALUATION = [
    "--two-sample-steps",
    "4",
    "--grey-faces",
    "3",
    "--already-target",
    "3",
    "--grid-faces",
    "3",
    "--occluded-faces",
    "3",
]

NEW_MEASURES = (
    "blur_control_success_rate",
    "success_over_blur_points",
    "mean_delta_e_face",
    "grey_stays_grey",
    "grey_stays_grey_without_rule",
    "already_target_delta_e",
    "already_target_identity_distance",
    "two_sample_accuracy",
)

TINY = [
    "--transform-width",
    "4",
    "--discriminator-width",
    "4",
    "--denoiser-width",
    "4",
    "--enhancer-width",
    "4",
    "--batch-size",
    "4",
    "--sample-every",
    "2",
    "--checkpoint-every",
    "2",
    "--log-every",
    "1",
    "-q",
]


def train(runs: Path, *arguments: str) -> Path:
    return train_new_run(runs, arguments, TINY)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> dict[str, Path]:
    runs = tmp_path_factory.mktemp("runs")
    data = ["--data", str(dataset_dir)]
    attribute = ["--attribute", "Eyeglasses", "--direction", "remove"]
    out: dict[str, Path] = {}
    out["reconstruct"] = train(runs, "--stage", "reconstruct", *data, "--steps", "3")
    out["perceptual"] = train(runs, "--stage", "perceptual", *data, "--steps", "2")
    out["denoise"] = train(
        runs, "--stage", "denoise", *data, "--steps", "2", "--reconstruction", str(out["perceptual"])
    )
    out["classify"] = train(runs, "--stage", "classify", *data, *attribute, "--steps", "3")
    common = [
        *data,
        *attribute,
        "--region",
        "eyes",
        "--steps",
        "3",
        "--init-transform",
        str(out["reconstruct"]),
        "--init-discriminator",
        str(out["classify"]),
        "--denoiser",
        str(out["denoise"]),
    ]
    out["diat"] = train(runs, "--stage", "diat", "--variant", "diat", *common)
    out["diat-a"] = train(runs, "--stage", "diat", "--variant", "diat-a", *common)
    out["enhance-local"] = train(
        runs, "--stage", "enhance-local", *data, "--steps", "2", "--transform-run", str(out["diat-a"])
    )
    out["enhance-global"] = train(runs, "--stage", "enhance-global", *data, "--steps", "2")
    out["edit"] = train(
        runs,
        "--stage",
        "edit",
        *data,
        *attribute,
        "--region",
        "eyes",
        "--steps",
        "3",
        "--gan-loss",
        "hinge",
        "--r1-every",
        "2",
        "--attribute-classifier",
        str(out["classify"]),
        "--pair-weight",
        "1",
        "--drawn-pair-weight",
        "2",
        "--keep-weight",
        "2",
        "--delta-lowpass",
        "0.7",
        "--edge-weight",
        "1",
        "--outside-weight",
        "1",
        "--augment",
        "colour,translation,cutout",
    )
    assert (
        main(
            [
                "classifier",
                *data,
                "--attribute",
                "Eyeglasses",
                "--steps",
                "4",
                "--batch-size",
                "8",
                "--classifier-width",
                "4",
                "--runs-dir",
                str(runs),
                "-q",
            ]
        )
        == EXIT_OK
    )
    out["evaluator"] = max(runs.iterdir())
    return out


def test_every_stage_ran_and_wrote_its_run_folder(chain: dict[str, Path]) -> None:
    assert {
        "reconstruct",
        "perceptual",
        "denoise",
        "classify",
        "enhance-local",
        "enhance-global",
        "evaluator",
        "edit",
    } <= set(chain) and set(STAGES) <= {*chain, "diat"}
    for name, run in chain.items():
        config = json.loads((run / "config.json").read_text())
        status = json.loads((run / "status.json").read_text())
        assert status["status"] == "done", name
        assert (run / CHECKPOINT).is_file(), name
        records = JsonlLog(run / "log.jsonl").read()
        losses = [r for r in records if "losses" in r]
        assert losses and all(np.isfinite(v) for r in losses for v in r["losses"].values()), name
        assert config["stage"] == ("diat" if name.startswith("diat") else name)
    assert run.name[:5].isdigit()


def test_sample_grids_show_held_out_faces(chain: dict[str, Path]) -> None:
    grid = Image.open(sorted((chain["diat-a"] / "samples").glob("*.png"))[-1])
    assert grid.width == 2 * 64 + 2  # input | output
    assert grid.height >= 64
    local = Image.open(sorted((chain["enhance-local"] / "samples").glob("*.png"))[-1])
    assert local.width == 3 * 64 + 4  # input | transformed | enhanced


def test_pretrained_networks_are_what_diat_starts_from(chain: dict[str, Path]) -> None:
    """DIAT's T starts from the reconstruct run's T and D from the classify run's D (then moves)."""
    start = network_state(chain["reconstruct"], "transform")
    after = network_state(chain["diat"], "transform")
    assert start.keys() == after.keys()
    assert any(not torch.equal(start[k], after[k]) for k in start)


def test_heldout_metrics_are_logged(chain: dict[str, Path]) -> None:
    heldout = [r["heldout"] for r in JsonlLog(chain["diat"] / "log.jsonl").read() if "heldout" in r]
    assert heldout and 0.0 <= heldout[-1]["heldout_identity_kept"] <= 1.0
    accuracy = [r["heldout"] for r in JsonlLog(chain["evaluator"] / "log.jsonl").read() if "heldout" in r]
    assert accuracy and 0.0 <= accuracy[-1]["heldout_balanced_accuracy"] <= 1.0


def test_export_runs_in_the_app_like_in_torch(chain: dict[str, Path], tmp_path: Path) -> None:
    folder = tmp_path / "models" / "remove-glasses"
    assert (
        main(
            ["export", str(chain["diat-a"]), "--out", str(folder), "--enhancer", str(chain["enhance-local"])]
        )
        == EXIT_OK
    )
    entry = ModelRegistry([folder.parent]).get("remove-glasses")
    manifest = entry.manifest
    assert manifest is not None and manifest.kind == "local" and manifest.region.value == "eyes"
    assert manifest.display_name == "Remove eyeglasses" and manifest.crop_size == 64
    assert manifest.training["variant"] == "diat-a" and "non-commercial" not in manifest.licence
    model = load_attribute_model(entry, Device.CPU)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32))
    mask = torch.from_numpy(rng.uniform(0, 1, (3, 1, 64, 64)).astype(np.float32))
    transform = load_trained(chain["diat-a"], "transform", "transform_width").eval()
    enhancer = load_trained(chain["enhance-local"], "local_enhancer", "enhancer_width").eval()
    with torch.no_grad():
        expected_t = transform(x).numpy()
        expected_e = enhancer(x, x, mask).numpy()
    # the app's own sessions, on a batch of 3 (dynamic batch)
    got_t = model.transform.session.run(["edited"], {"image": x.numpy()})[0]
    got_e = model.enhancer.session.run(  # type: ignore[union-attr]
        ["enhanced"], {"transformed": x.numpy(), "original": x.numpy(), "mask": mask.numpy()}
    )[0]
    # the weights travel as float16 (trainer/onnx_weights.py): within half a level of an 8-bit image
    assert np.abs(got_t - expected_t).max() < 1 / 255
    assert np.abs(got_e - expected_e).max() < 1 / 255
    assert model.providers.active[0] == "CPUExecutionProvider"
    assert ort.InferenceSession(str(folder / "transform.onnx")).get_inputs()[0].shape[0] == "batch"


def test_global_export_and_evaluate(chain: dict[str, Path], tmp_path: Path, dataset_dir: Path) -> None:
    runs = chain["diat"].parent
    glob_run = train(
        runs,
        "--stage",
        "diat",
        "--data",
        str(dataset_dir),
        "--attribute",
        "Eyeglasses",
        "--direction",
        "remove",
        "--steps",
        "2",
        "--variant",
        "diat-a",
    )
    folder = tmp_path / "models" / "global-edit"
    assert (
        main(["export", str(glob_run), "--out", str(folder), "--enhancer", str(chain["enhance-global"])]) == 0
    )
    manifest = ModelRegistry([folder.parent]).get("global-edit").manifest
    assert manifest is not None and manifest.kind == "global" and manifest.enhancer is not None
    assert (
        main(
            [
                "export",
                str(glob_run),
                "--out",
                str(tmp_path / "bad"),
                "--enhancer",
                str(chain["enhance-local"]),
            ]
        )
        == 2
    )  # a local enhancer cannot serve a global edit

    local = tmp_path / "models" / "remove-glasses"
    assert (
        main(["export", str(chain["diat-a"]), "--out", str(local), "--enhancer", str(chain["enhance-local"])])
        == 0
    )
    evaluate = ["evaluate", str(local), "--data", str(dataset_dir), "--classifier", str(chain["evaluator"])]
    assert main([*evaluate, *SMALL_EVALUATION]) == 0
    full_report = json.loads((local / "evaluation.json").read_text())
    report = full_report["metrics"]
    for key in (
        "attribute_success_rate",
        "identity_kept_rate",
        "identity_mean_distance",
        "psnr_outside_mask_db",
        "sharpness_ratio",
        *NEW_MEASURES,
    ):
        assert key in report
    check_new_measures(report)
    assert report["grey_stays_grey"] == 1.0  # the app's grey rule is part of the evaluated path
    assert full_report["sizes"]["grid_faces"] == 3 and full_report["blur_control_sigma_px"] == 1.0
    assert full_report["sizes"]["occluded_faces"] == 3
    assert len(full_report["grids"]["crops"]) == 3 and len(full_report["grids"]["photos"]) == 3
    assert Image.open(local / "evaluation.png").size == (3 * 64 + 4, 3 * 64 + 4)
    assert Image.open(local / "evaluation-photos.png").height == 256  # one row of 3 photos, 256 px high
    assert 0 <= report["attribute_success_rate"] <= 1 and report["heldout_faces"] >= 1
    assert report["sharpness_ratio"] > 0
    # E_local starts from the mask composite, so even briefly trained it leaves the outside alone
    assert report["psnr_outside_mask_db"] > 30
    assert (
        ModelRegistry([local.parent]).get("remove-glasses").manifest.metrics["identity_kept_rate"]
        == (report["identity_kept_rate"])
    )
    assert (local / "evaluation.png").is_file()
    assert not ModelRegistry([local.parent]).get("remove-glasses").experimental
    # --quality-bar: a 3-step model misses the bar, so it is shipped experimental, with what it missed
    assert main([*evaluate, *SMALL_EVALUATION, "--quality-bar"]) == 0
    entry = ModelRegistry([local.parent]).get("remove-glasses")
    missed = json.loads((local / "evaluation.json").read_text())["quality_bar_missed"]
    assert entry.experimental and missed and entry.manifest.metrics["quality_bar_missed"] == missed
    assert set(missed) <= {target.key for target in QUALITY_BAR}


def test_dev_split_is_never_trained_on_and_evaluated_apart(
    chain: dict[str, Path], tmp_path: Path, dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer import data as data_module
    from trainer.data import PreparedDataset

    sampled: list[np.ndarray] = []
    original_init = data_module.BatchSampler.__init__

    def recording_init(self: data_module.BatchSampler, dataset: object, rows: np.ndarray, *a, **k) -> None:  # type: ignore[no-untyped-def]
        sampled.append(np.asarray(rows))
        original_init(self, dataset, rows, *a, **k)

    monkeypatch.setattr(data_module.BatchSampler, "__init__", recording_init)
    run = train(
        chain["diat"].parent,
        "--stage",
        "diat",
        "--data",
        str(dataset_dir),
        "--attribute",
        "Eyeglasses",
        "--direction",
        "remove",
        "--region",
        "eyes",
        "--steps",
        "2",
        "--dev-fraction",
        "0.3",
        "--init-transform",
        str(chain["reconstruct"]),
        "--init-discriminator",
        str(chain["classify"]),
    )
    dev = set(PreparedDataset.open(dataset_dir).with_dev_split(0.3).indices("dev"))
    assert dev and sampled and not any(dev & set(rows.tolist()) for rows in sampled)

    folder = tmp_path / "models" / "dev-edit"
    assert main(["export", str(run), "--out", str(folder), "--enhancer", str(chain["enhance-local"])]) == 0
    assert json.loads((folder / "manifest.json").read_text())["training"]["dataset"]["dev_fraction"] == 0.3

    def evaluate_dev(model: Path) -> int:
        classifier = str(chain["evaluator"])
        return main(
            [
                "evaluate",
                str(model),
                "--data",
                str(dataset_dir),
                "--classifier",
                classifier,
                "--split",
                "dev",
                *SMALL_EVALUATION,
            ]
        )

    assert evaluate_dev(folder) == 0
    report = json.loads((folder / "evaluation-dev.json").read_text())
    eyeglasses = PreparedDataset.open(dataset_dir).labels["Eyeglasses"]
    assert report["split"] == "dev" and report["metrics"]["dev_faces"] == sum(eyeglasses[i] == 1 for i in dev)
    assert (folder / "evaluation-dev.png").is_file() and not (folder / "evaluation.json").exists()
    assert (folder / "evaluation-dev-photos.png").is_file() and not (
        folder / "evaluation-photos.png"
    ).exists()
    check_new_measures(report["metrics"])
    assert report["metrics"]["already_target_faces"] == min(3, sum(eyeglasses[i] == 0 for i in dev))
    assert json.loads((folder / "manifest.json").read_text())["metrics"] == {}  # dev numbers stay out of it

    plain = tmp_path / "models" / "no-dev"
    assert main(["export", str(chain["diat-a"]), "--out", str(plain)]) == 0
    assert evaluate_dev(plain) == 2  # trained on every training face: no dev split to measure on


def test_edit_recipe_run_logs_every_component(chain: dict[str, Path]) -> None:
    records = JsonlLog(chain["edit"] / "log.jsonl").read()
    losses = [r["losses"] for r in records if "losses" in r]
    assert {"d", "adversarial", "identity", "attribute", "pairs", "drawn_pixels", "kept", "delta"} <= set(
        losses[-1]
    )
    assert "r1" in losses[1]  # lazy R1 on every second step
    heldout = [r["heldout"] for r in records if "heldout" in r][-1]
    assert 0.0 <= heldout["heldout_guide_target_rate"] <= 1.0 and heldout["heldout_delta"] > 0
    networks = set(torch.load(chain["edit"] / CHECKPOINT, weights_only=False)["networks"])
    assert networks == {"editor", "editor_ema", "discriminator", "region_discriminator"}


def test_an_edit_run_continued_with_a_detail_gate_exports_it(
    chain: dict[str, Path], dataset_dir: Path, tmp_path: Path
) -> None:
    """--detail-gate on a run initialised from a gateless editor: its weights load, the gate trains, and
    the exported model computes what torch does (the gate and its fixed Gaussians are in the ONNX graph)."""
    run = train(
        tmp_path / "runs", "--stage", "edit", "--data", str(dataset_dir),
        "--attribute", "Eyeglasses", "--direction", "remove", "--region", "eyes",
        "--steps", "2", "--gan-loss", "hinge", "--init-transform", str(chain["edit"]),
        "--delta-lowpass", "0.7", "--detail-gate", "1.5",
    )  # fmt: skip
    gated = load_trained(run, "editor", "transform_width", kind="editor", delta_lowpass=0.7, detail_gate=1.5)
    assert gated.detail_gate is not None
    assert torch.count_nonzero(gated.detail_gate.head.weight) > 0  # it trained
    folder = tmp_path / "models" / "gated-glasses"
    assert main(["export", str(run), "--out", str(folder)]) == EXIT_OK
    entry = ModelRegistry([folder.parent]).get("gated-glasses")
    assert entry.manifest is not None and entry.manifest.training["recipe"]["detail_gate"] == 1.5
    average = load_trained(
        run, "editor_ema", "transform_width", kind="editor", delta_lowpass=0.7, detail_gate=1.5
    ).eval()
    x = torch.from_numpy(np.random.default_rng(2).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))
    got = load_attribute_model(entry, Device.CPU).transform.session.run(["edited"], {"image": x.numpy()})[0]
    with torch.no_grad():
        assert np.abs(got - average(x).numpy()).max() < 1e-4


def test_a_mouth_edit_hides_the_inner_mouth_and_starts_from_an_earlier_d(
    chain: dict[str, Path], dataset_dir: Path, tmp_path: Path
) -> None:
    """--inner-detail-weight, --green-weight, --lip-colour-weight (and --upper-lip-weight,
    --occluder-weight, --mouth-detail-weight) are logged as losses of a mouth edit
    (this set's "mouth" edit removes an attribute, as closing a mouth does; a second run adds it, as
    opening does, through the opened lips' prior); --init-discriminator
    loads D and the region D of an earlier edit run (with their learning rate 0 they are still exactly
    those weights after the run, the spectral norm's power-iteration buffers aside)."""
    run = train(
        tmp_path / "runs", "--stage", "edit", "--data", str(dataset_dir),
        "--attribute", "Eyeglasses", "--direction", "remove", "--region", "mouth",
        "--steps", "2", "--gan-loss", "hinge", "--init-transform", str(chain["edit"]),
        "--init-discriminator", str(chain["edit"]), "--lr-discriminator", "0", "--r1-weight", "0",
        "--inner-detail-weight", "10", "--green-weight", "100", "--lip-colour-weight", "50",
    )  # fmt: skip
    losses = [r["losses"] for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]
    assert all("inner_detail" in step and np.isfinite(step["inner_detail"]) for step in losses)
    assert all(step["green"] >= 0.0 and step["lip_colour"] >= 0.0 for step in losses)
    # opening a mouth, the same weight is the opened lips' prior (trainer.losses.opened_lips_penalty)
    opening = train(
        tmp_path / "runs", "--stage", "edit", "--data", str(dataset_dir),
        "--attribute", "Eyeglasses", "--direction", "add", "--region", "mouth",
        "--steps", "2", "--gan-loss", "hinge", "--lip-colour-weight", "50", "--upper-lip-weight", "30",
        "--occluder-weight", "30", "--mouth-detail-weight", "100",
    )  # fmt: skip
    opened = [r["losses"] for r in JsonlLog(opening / "log.jsonl").read() if "losses" in r]
    assert opened and all(np.isfinite(step["lip_colour"]) and step["lip_colour"] >= 0.0 for step in opened)
    assert all(np.isfinite(step["upper_lip"]) and step["upper_lip"] >= 0.0 for step in opened)
    assert all(np.isfinite(step["mouth_detail"]) and step["mouth_detail"] >= 0.0 for step in opened)
    # a hand drawn over the mouth: an editor fresh from the identity leaves it alone, so the term is small
    assert all(np.isfinite(step["occluder"]) and 0.0 <= step["occluder"] < 0.05 for step in opened)
    for name in ("discriminator", "region_discriminator"):
        before, after = network_state(chain["edit"], name), network_state(run, name)
        learned = [key for key in before if not key.endswith(("_u", "_v"))]
        assert learned and all(torch.equal(before[key], after[key]) for key in learned), name


def test_a_warm_start_on_glasses_pairs_alone_skips_the_real_faces(tmp_path: Path, dataset_dir: Path) -> None:
    """Every weight on T's edit of the real source faces at 0: the step trains on the drawn pairs (and the
    faces that keep their look) only — no identity, attribute or Δ terms are computed — and still learns."""
    arguments = ["--stage", "edit", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--direction"]
    real_faces = ["--adversarial-weight", "0", "--identity-weight", "0", "--embedding-weight", "0"]
    weights = [*real_faces, "--edit-weight", "0", "--colour-weight", "0", "--attribute-weight", "0"]
    pairs = ["--pair-weight", "1", "--drawn-pair-weight", "1", "--keep-weight", "1", "--steps", "3"]
    run = train(tmp_path, *arguments, "remove", "--region", "eyes", *weights, *pairs)
    losses = [r["losses"] for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]
    assert set(losses[-1]) == {"pairs", "drawn_pixels", "kept", "t_total"}
    assert network_state(run, "editor")["net.10.weight"].abs().sum() > 0  # the zeroed last layer moved
    # one term on the real faces (Δ's size, at its default weight) brings their pass back
    run = train(
        tmp_path, *arguments, "remove", "--region", "eyes", *real_faces, "--colour-weight", "0", *pairs
    )
    losses = [r["losses"] for r in JsonlLog(run / "log.jsonl").read() if "losses" in r]
    assert {"pairs", "drawn_pixels", "identity", "delta"} <= set(losses[-1])


def test_export_records_the_transform_passes_and_evaluate_measures_them(
    chain: dict[str, Path], tmp_path: Path, dataset_dir: Path, capsys
) -> None:
    """`export --passes N` writes the manifest's transform_passes; a re-export keeps it, `--passes 1` drops
    it, and `evaluate` measures the model through its passes (the app's own `edit_crops`)."""
    folder = tmp_path / "models" / "twice"
    assert main(["export", str(chain["edit"]), "--out", str(folder), "--passes", "2"]) == EXIT_OK

    def passes() -> int:
        return ModelRegistry([folder.parent]).get("twice").manifest.transform_passes

    assert passes() == 2
    assert main(["export", str(chain["edit"]), "--out", str(folder)]) == EXIT_OK
    assert passes() == 2
    evaluate = ["evaluate", str(folder), "--data", str(dataset_dir), "--classifier", str(chain["evaluator"])]
    assert main([*evaluate, *SMALL_EVALUATION]) == EXIT_OK
    report = json.loads((folder / "evaluation.json").read_text())["metrics"]
    assert report["grey_stays_grey"] == 1.0 and report["heldout_faces"] >= 1
    assert main(["export", str(chain["edit"]), "--out", str(folder), "--passes", "1"]) == EXIT_OK
    assert passes() == 1 and "transform_passes" not in json.loads((folder / "manifest.json").read_text())
    capsys.readouterr()
    assert main(["export", str(chain["edit"]), "--out", str(folder), "--passes", "5"]) != EXIT_OK
    assert "--passes: invalid choice" in capsys.readouterr().err


def test_export_records_the_mirror_average_and_a_re_export_keeps_it(
    chain: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "models" / "mirrored"

    def manifest() -> dict:
        return json.loads((folder / "manifest.json").read_text())

    assert main(["export", str(chain["edit"]), "--out", str(folder), "--mirror-average"]) == EXIT_OK
    assert manifest()["mirror_average"] is True
    assert ModelRegistry([folder.parent]).get("mirrored").manifest.mirror_average
    assert main(["export", str(chain["edit"]), "--out", str(folder), "--passes", "2"]) == EXIT_OK
    assert manifest()["mirror_average"] is True and manifest()["transform_passes"] == 2
    assert main(["export", str(chain["edit"]), "--out", str(folder), "--no-mirror-average"]) == EXIT_OK
    assert "mirror_average" not in manifest() and manifest()["transform_passes"] == 2


def test_edit_export_is_the_weight_average(chain: dict[str, Path], tmp_path: Path) -> None:
    """The exported T of an `edit` run is its EMA editor, runs in the app like in torch, and edits as a
    residual: x + Δ (the app then applies the region mask, as the stage did in training)."""
    folder = tmp_path / "models" / "edit-glasses"
    assert main(["export", str(chain["edit"]), "--out", str(folder)]) == EXIT_OK
    entry = ModelRegistry([folder.parent]).get("edit-glasses")
    manifest = entry.manifest
    assert manifest is not None and manifest.kind == "local" and manifest.region.value == "eyes"
    assert manifest.training["variant"] == "diat"
    assert manifest.training["recipe"]["attribute_classifier"] == chain["classify"].name
    assert manifest.training["weights"]["pair_weight"] == 1.0
    assert manifest.training["weights"]["drawn_pair_weight"] == 2.0
    assert manifest.training["weights"]["keep_weight"] == 2.0
    assert manifest.training["recipe"]["delta_lowpass"] == 0.7
    average = load_trained(chain["edit"], "editor_ema", "transform_width", kind="editor", delta_lowpass=0.7)
    live = load_trained(chain["edit"], "editor", "transform_width", kind="editor", delta_lowpass=0.7)
    unsmoothed = load_trained(chain["edit"], "editor_ema", "transform_width", kind="editor")
    average, live, unsmoothed = average.eval(), live.eval(), unsmoothed.eval()
    x = torch.from_numpy(np.random.default_rng(1).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32))
    model = load_attribute_model(entry, Device.CPU)
    got = model.transform.session.run(["edited"], {"image": x.numpy()})[0]
    with torch.no_grad():
        expected, other = average(x).numpy(), live(x).numpy()
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(got - other).max() > 1e-6  # the average, not the last weights
    with torch.no_grad():  # the exported network has the run's low-pass on its edit
        assert np.abs(got - unsmoothed(x).numpy()).max() > 1e-6
    assert np.abs(got - x.numpy()).max() < 0.5  # a residual edit of a few steps stays near the photo
    assert not manifest.experimental
    # the quality verdict: set by --experimental, kept by a plain re-export, cleared by --no-experimental
    for flags, expected in (
        (["--experimental"], True),
        ([], True),
        (["--no-experimental"], False),
    ):
        assert main(["export", str(chain["edit"]), "--out", str(folder), *flags]) == EXIT_OK
        assert ModelRegistry([folder.parent]).get("edit-glasses").experimental is expected


def check_new_measures(metrics: dict[str, object]) -> None:
    """The realism, blur-control, colour and already-target measures are there and in range."""
    rates = ("blur_control_success_rate", "grey_stays_grey", "grey_stays_grey_without_rule")
    for key in rates:
        assert 0.0 <= metrics[key] <= 1.0, key  # type: ignore[operator]
    if "two_sample_accuracy" in metrics:  # needs 2 faces on each side
        runs = metrics["two_sample_runs"]
        assert len(runs) == 3 and metrics["two_sample_accuracy"] == max(runs)  # type: ignore[arg-type]
        assert 0.0 <= metrics["two_sample_accuracy"] <= 1.0  # type: ignore[operator]
    success, control = metrics["attribute_success_rate"], metrics["blur_control_success_rate"]
    assert metrics["success_over_blur_points"] == round((success - control) * 100, 1)  # type: ignore[operator]
    for key in ("mean_delta_e_face", "already_target_delta_e", "already_target_identity_distance"):
        assert 0.0 <= metrics[key] < 200.0, key  # type: ignore[operator]


def test_evaluate_measures_what_the_app_delivers(
    chain: dict[str, Path], tmp_path: Path, dataset_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A colour-changing fixture model: the grey rule keeps grey faces grey (the networks alone do not),
    ΔE sees the colour change, and the photo grid falls back or skips as documented."""
    from dataclasses import replace

    from diat_studio.core.manifest import ModelManifest
    from diat_studio.core.regions import RegionKind
    from tests.onnx_fixtures import model_folder
    from trainer.data import PreparedDataset
    from trainer.evaluate import EvaluationSizes, evaluate_model

    folder = model_folder(tmp_path / "models", "redden-eyes", "local", RegionKind.EYES, crop_size=64)
    manifest = ModelManifest.load(folder)
    replace(manifest, attribute="Eyeglasses", direction="remove").save(folder)
    sizes = EvaluationSizes(two_sample_steps=4, grey_faces=3, already_target=3, grid_faces=2)

    found: list[int] = []

    import diat_studio.core.faces as faces_module  # evaluate imports it where photos are edited

    class FirstPhotoHasNoFace(faces_module.FaceDetector):
        def detect(self, rgb):  # type: ignore[no-untyped-def]
            found.append(1)
            return [] if len(found) == 1 else super().detect(rgb)

    monkeypatch.setattr(faces_module, "FaceDetector", FirstPhotoHasNoFace)
    report = evaluate_model(folder, dataset_dir, chain["evaluator"], update_manifest=False, sizes=sizes)
    metrics = report["metrics"]
    check_new_measures(metrics)
    assert metrics["grey_stays_grey"] == 1.0 and metrics["grey_stays_grey_without_rule"] == 0.0
    assert metrics["mean_delta_e_face"] > 10 and metrics["already_target_delta_e"] > 10
    grids = report["grids"]
    assert len(grids["photos_without_face"]) == 1 and grids["photos_without_face"][0] not in grids["photos"]
    rows = PreparedDataset.open(dataset_dir).indices("heldout", "Eyeglasses", 1)
    assert len(grids["photos"]) == min(2, len(rows) - 1) and not grids["photos_unreadable_crop_shown"]

    # photos that cannot be read: the edited crop stands in, and the report says so
    moved = tmp_path / "moved-dataset"
    shutil.copytree(dataset_dir, moved)
    info = json.loads((moved / "prepare.json").read_text())
    (moved / "prepare.json").write_text(json.dumps({**info, "source": str(tmp_path / "gone")}))
    report = evaluate_model(folder, moved, chain["evaluator"], update_manifest=False, sizes=sizes)
    assert len(report["grids"]["photos_unreadable_crop_shown"]) == 2 and not report["grids"]["photos"]
    assert Image.open(folder / "evaluation-photos.png").height == 256
