"""The lent-GPU path on the CPU: `pack` → `fleet --minutes 0.2` (with dlib and Qt made unimportable, as on
the GPU machine) → `fleet-import`, on the small astronaut dataset with tiny networks."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from diat_studio.core.inference import Device, load_attribute_model
from diat_studio.core.registry import ModelRegistry
from tests.trainer.conftest import classifier_run
from trainer.bundled_edits import BUNDLED, edit_specs
from trainer.data import PreparedDataset, to_tensor
from trainer.evaluate import EvaluationSizes
from trainer.export import continued_from
from trainer.fleet import MAX_RESULT_BYTES, MAX_RESULT_FILES, FleetOptions, check_results, run_fleet
from trainer.fleet_import import ImportOptions, import_results
from trainer.identity import FaceIdentity
from trainer.pack import PackError, PackOptions, build_pack, unpack_dataset
from trainer.quality import GRID_ARTEFACTS
from trainer.stage_base import load_trained

REPOSITORY = Path(__file__).resolve().parents[2]
EXTRA_ATTRIBUTES = ("Mouth_Slightly_Open", "Male", "Young")


def _labelled_copy(dataset_dir: Path, out: Path) -> Path:
    """The astronaut dataset with the bundled edits' other attributes added (alternating values, so that
    every split has faces with and without each)."""
    shutil.copytree(dataset_dir, out)
    with open(out / "labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for index, row in enumerate(rows):
        for shift, attribute in enumerate(EXTRA_ATTRIBUTES):
            row[attribute] = str((index + shift) % 2)
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> tuple[Path, Path]:
    """(the labelled dataset, a runs folder with a guide and an evaluator run for every attribute)."""
    root = tmp_path_factory.mktemp("fleet")
    data = _labelled_copy(dataset_dir, root / "data")
    runs = root / "runs"
    for attribute in ("Eyeglasses", *EXTRA_ATTRIBUTES):
        classifier_run(data, runs, "classify", attribute, f"guide-{attribute}")
        classifier_run(data, runs, "evaluator", attribute, f"{attribute}-classifier")
    return data, runs


@pytest.fixture(scope="module")
def pack(labelled: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    data, runs = labelled
    out = tmp_path_factory.mktemp("pack") / "gpu-pack"
    build_pack(PackOptions(data=data, out=out, runs_dir=runs, heldout_faces=4, check_budget=False))
    return out


def test_pack_holds_every_training_face_and_decodes_back(pack: Path, labelled, tmp_path: Path) -> None:
    data, _ = labelled
    source = PreparedDataset.open(data)
    manifest = json.loads((pack / "pack.json").read_text())
    assert [e["name"] for e in manifest["edits"]] == list(BUNDLED)
    assert manifest["faces"]["train"] == int((source.split == "train").sum())
    assert 0 < manifest["faces"]["heldout"] <= 4
    assert "WebP" in manifest["traded"]
    for attribute in ("Eyeglasses", *EXTRA_ATTRIBUTES):
        for kind in ("guide", "evaluator"):
            assert (pack / "runs" / f"{kind}-{attribute}" / "checkpoints" / "latest.pt").is_file()

    unpacked = PreparedDataset.open(unpack_dataset(pack, tmp_path / "dataset"))
    rows = [source.files.index(name) for name in unpacked.files]
    assert (unpacked.split == source.split[rows]).all()
    for attribute in ("Eyeglasses", *EXTRA_ATTRIBUTES):
        assert (unpacked.labels[attribute] == source.labels[attribute][rows]).all()
    error = np.asarray(unpacked.crops, float) - np.asarray(source.crops[rows], float)
    assert 10 * np.log10(255**2 / (error**2).mean()) > 32  # lossy, but close
    assert np.abs(unpacked.landmarks - source.landmarks[rows]).max() < 0.05
    # the developers' split is the same faces (it is drawn from the training faces, all of which travel)
    dev = lambda d: sorted(d.files[i] for i in d.with_dev_split(0.25).indices("dev"))  # noqa: E731
    assert dev(unpacked) == dev(source)


def test_pack_identity_weights_match_dlib(pack: Path, labelled) -> None:
    data, _ = labelled
    dataset = PreparedDataset.open(data)
    crops = to_tensor(np.array(dataset.crops[:4]))
    from_pack = FaceIdentity(dataset.template, weights=pack / "identity.pt").descriptors(crops)
    from_dlib = FaceIdentity(dataset.template).descriptors(crops)
    assert torch.allclose(from_pack, from_dlib, atol=5e-3)


def test_pack_refuses_bad_requests(labelled, tmp_path: Path) -> None:
    data, runs = labelled
    with pytest.raises(ValueError, match="unknown edit 'add-beard'"):
        build_pack(PackOptions(data=data, out=tmp_path / "p", runs_dir=runs, edits=("add-beard",)))
    with pytest.raises(PackError, match=r"no finished .* and none carried"):
        build_pack(
            PackOptions(
                data=data,
                out=tmp_path / "p",
                runs_dir=tmp_path / "no-runs",
                classifiers_root=tmp_path / "none",
            )
        )
    (tmp_path / "exists").mkdir()
    with pytest.raises(PackError, match="--force"):
        build_pack(PackOptions(data=data, out=tmp_path / "exists", runs_dir=runs, check_budget=False))


@pytest.fixture(scope="module")
def fleet_results(
    pack: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess]:
    """`fleet --minutes 0.2` on the CPU, in a process where dlib, Qt and dlib's models cannot be imported."""
    root = tmp_path_factory.mktemp("fleet-run")
    blocked = root / "blocked"
    for module in ("dlib", "PySide6", "face_recognition_models"):
        (blocked / module).mkdir(parents=True)
        (blocked / module / "__init__.py").write_text(
            f"raise ImportError('{module} is not on the GPU machine')\n"
        )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocked), str(REPOSITORY)]),
        "OMP_NUM_THREADS": "1",
    }
    command = [
        sys.executable, "-m", "trainer.cli", "fleet", str(pack), "--minutes", "0.2",
        "--out", str(root / "out"), "--work", str(root / "work"), "--device", "cpu",
        "--batch-size", "2", "--transform-width", "4", "--discriminator-width", "4",
        "--evaluate-faces", "4", "--two-sample-steps", "2",
        "--set", "checkpoint_every=5", "--set", "close-mouth:detail_gate=1.2",
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPOSITORY)
    return root / "out", result


def test_fleet_trains_every_edit_without_dlib_and_fits_the_return_limits(
    fleet_results, tmp_path: Path
) -> None:
    out, result = fleet_results
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    files = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(files) <= MAX_RESULT_FILES and all(p.stat().st_size <= MAX_RESULT_BYTES for p in files)
    assert check_results(out) == []
    summary = json.loads((out / "fleet.json").read_text())
    assert set(summary["edits"]) == set(BUNDLED)
    for name, entry in summary["edits"].items():
        assert entry["status"] == "done", entry
        assert entry["steps"] >= 1 and entry["images_per_second"] > 0
        assert "attribute_success_rate" in entry["metrics"]
        with tarfile.open(out / entry["file"]) as archive:
            archive.extractall(tmp_path / "unpacked", filter="data")
        model = tmp_path / "unpacked" / name / "model"
        assert (model / "evaluation.png").is_file()
        assert (tmp_path / "unpacked" / name / "run" / "checkpoints" / "latest.pt").is_file()
        config = json.loads((tmp_path / "unpacked" / name / "run" / "config.json").read_text())
        assert config["checkpoint_every"] == 5  # --set FIELD=JSON: every edit
        spec_gate = next(s for s in edit_specs() if s.name == name).config_fields().get("detail_gate", 0.0)
        assert config["detail_gate"] == (1.2 if name == "close-mouth" else spec_gate)  # EDIT:FIELD=JSON: one
        shutil.copytree(model, tmp_path / "models" / name)
    registry = ModelRegistry([tmp_path / "models"])
    assert sorted(e.name for e in registry.available()) == sorted(BUNDLED)
    for entry in registry.available():
        spec = next(s for s in edit_specs() if s.name == entry.name)
        assert entry.manifest.kind == ("local" if spec.region else "global")
        size = entry.manifest.crop_size
        crops = np.full((2, size, size, 3), 128, np.uint8)
        assert load_attribute_model(entry, Device.CPU).transform(crops).shape == crops.shape


def test_fleet_refuses_a_setting_for_an_edit_it_does_not_train(pack: Path, tmp_path: Path) -> None:
    options = FleetOptions(
        pack=pack, out=tmp_path / "out", minutes=0.01, edit_overrides={"add-beard": {"detail_gate": 1.5}}
    )
    with pytest.raises(ValueError, match="--set for add-beard: not an edit this fleet trains"):
        run_fleet(options)
    assert not (tmp_path / "out").exists()  # refused before anything was made


def _import_options(
    fleet_results, labelled, tmp_path: Path, edits: tuple[str, ...], ship: bool = False
) -> ImportOptions:
    """`fleet-import` of the CPU fleet's results into tmp_path, at the tests' small evaluation sizes."""
    out, result = fleet_results
    assert result.returncode == 0
    data, runs = labelled
    return ImportOptions(
        results=out,
        data=data,
        runs_dir=runs,
        models=tmp_path / "models",
        work=tmp_path / "work",
        edits=edits,
        ship=ship,
        sizes=EvaluationSizes(two_sample_steps=5, grid_faces=2, grey_faces=2, already_target=4),
    )


def test_fleet_import_measures_compares_and_ships(fleet_results, labelled, tmp_path: Path) -> None:
    chosen = ("remove-eyeglasses", "male-to-female")  # a local and a global edit
    options = _import_options(fleet_results, labelled, tmp_path, chosen)
    models = options.models
    rows = import_results(ImportOptions(**{**options.__dict__, "ship": True}), say=lambda _text: None)
    assert [r["edit"] for r in rows] == sorted(chosen)
    assert all(r["decision"] == "shipped" for r in rows)  # nothing was there: every candidate is better
    for name in chosen:
        manifest = json.loads((models / name / "manifest.json").read_text())
        assert "quality_bar_missed" in manifest["metrics"]  # measured here, on every held-out face
        assert manifest["metrics"]["heldout_faces"] >= 1
        assert (models / name / "evaluation.png").is_file()
    assert sorted(e.name for e in ModelRegistry([models]).available()) == sorted(chosen)
    printed: list[str] = []
    again = ImportOptions(**{**options.__dict__, "edits": ("remove-eyeglasses",)})
    rows = import_results(again, say=printed.append)  # the same model, measured the same: not better
    assert rows[0]["decision"] == "kept the shipped model"
    assert "| remove-eyeglasses | shipped |" in printed[-1]
    with pytest.raises(ValueError, match="no edit 'add-beard'"):
        import_results(ImportOptions(**{**options.__dict__, "edits": ("add-beard",)}))


def test_fleet_import_compares_by_one_evaluator_and_leaves_the_grid_out(
    fleet_results, labelled, tmp_path: Path
) -> None:
    """A shipped model measured by another evaluator is measured again before the comparison (in a copy:
    its folder is untouched), and a person's grid count on the shipped model does not make a candidate
    nobody has looked at better."""
    options = _import_options(fleet_results, labelled, tmp_path, ("remove-eyeglasses",), ship=True)
    models = options.models
    import_results(options, say=lambda _text: None)
    manifest_path = models / "remove-eyeglasses" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    measured = dict(manifest["metrics"])
    # as if another machine's evaluator had measured it lower, and a person had counted grid artefacts
    manifest["metrics"].update(
        {
            "classifier": "00099-evaluator-Eyeglasses-classifier",
            "success_over_blur_points": -99.0,
            GRID_ARTEFACTS: 3,
        }
    )
    manifest_path.write_text(json.dumps(manifest))
    before = manifest_path.read_bytes()
    printed: list[str] = []
    rows = import_results(options, say=printed.append)
    assert rows[0]["remeasured"]
    assert rows[0]["current"]["classifier"] == measured["classifier"]
    assert rows[0]["current"]["success_over_blur_points"] == measured["success_over_blur_points"]
    assert rows[0]["current"][GRID_ARTEFACTS] == 3  # what the person counted stays with the shipped model
    assert rows[0]["decision"] == "kept the shipped model"  # the same model measured the same way: a tie
    assert manifest_path.read_bytes() == before
    assert "| remove-eyeglasses | shipped (measured again) |" in printed[-1]
    preview = import_results(ImportOptions(**{**options.__dict__, "evaluate": False}), say=lambda _text: None)
    assert preview[0]["decision"].startswith("not comparable")  # the GPU's numbers: other faces
    assert manifest_path.read_bytes() == before


def test_a_pack_continues_an_installed_model(labelled, tmp_path: Path) -> None:
    """`pack --continue EDIT=MODEL_FOLDER` (a fresh checkout has the bundled models, not their runs): the
    pack carries the model's editor as a slim run that `load_trained` rebuilds into what the ONNX file
    computes; a model of another edit is refused."""
    data, runs = labelled
    bundled = REPOSITORY / "resources" / "models" / "male-to-female"
    options = PackOptions(
        data=data,
        out=tmp_path / "pack",
        runs_dir=runs,
        edits=("male-to-female", "open-mouth"),
        heldout_faces=4,
        continue_from=(("male-to-female", bundled),),
        check_budget=False,
    )
    manifest = build_pack(options)
    shipped = json.loads((bundled / "manifest.json").read_text())["training"]["transform"]
    assert manifest["continue"]["male-to-female"] == {
        "run": str(bundled), "steps": shipped["steps"], "transform_width": 32
    }  # fmt: skip
    init = tmp_path / "pack" / "init" / "male-to-female"
    chain = continued_from({"stage": "edit", "init_transform": str(init)})["continued_from"]
    assert chain["steps"] == shipped["steps"]  # the model's own training goes into the next manifest
    assert (chain["seconds"], chain["device"]) == (shipped["seconds"], shipped["device"])
    assert chain["continued_from"] == shipped["continued_from"]  # and the runs before it
    editor = load_trained(init, "editor_ema", "transform_width", kind="editor").eval()
    x = np.random.default_rng(3).uniform(-1, 1, (1, 3, 128, 128)).astype(np.float32)
    session = ort.InferenceSession(str(bundled / "transform.onnx"), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        rebuilt = editor(torch.from_numpy(x)).numpy()
    assert np.abs(rebuilt - session.run(["edited"], {"image": x})[0]).max() < 1e-4
    wrong = ("open-mouth", bundled)
    message = r"a model of Mouth_Slightly_Open \(add\) is needed, that one edits Male"
    with pytest.raises(PackError, match=message):
        build_pack(PackOptions(**{**options.__dict__, "out": tmp_path / "p2", "continue_from": (wrong,)}))


def test_a_second_session_continues_an_edit_from_the_first(fleet_results, labelled, tmp_path: Path) -> None:
    """`pack --continue EDIT=RUN` carries the first session's editor; the second `fleet` starts that edit
    from it (not from the identity) and says so in fleet.json."""
    out, result = fleet_results
    assert result.returncode == 0
    data, runs = labelled
    with tarfile.open(out / "male-to-female.tar.gz") as archive:
        archive.extractall(tmp_path / "first", filter="data")
    first = tmp_path / "first" / "male-to-female" / "run"
    pack = tmp_path / "pack"
    options = PackOptions(
        data=data,
        out=pack,
        runs_dir=runs,
        edits=("male-to-female", "open-mouth"),
        heldout_faces=4,
        continue_from=(("male-to-female", first),),
        check_budget=False,
    )
    manifest = build_pack(options)
    assert set(manifest["continue"]) == {"male-to-female"}
    assert manifest["continue"]["male-to-female"]["steps"] >= 1
    assert manifest["continue"]["male-to-female"]["transform_width"] == 4
    assert manifest["continue"]["male-to-female"]["discriminator_width"] == 4  # its D came back with it
    packed = torch.load(pack / "init" / "male-to-female" / "checkpoints" / "latest.pt", weights_only=False)
    networks = torch.load(first / "checkpoints" / "latest.pt", weights_only=False)["networks"]
    assert set(networks) == {"editor", "editor_ema", "discriminator"}  # the fleet's slim checkpoint
    assert set(packed["networks"]) == {"editor_ema", "discriminator"}
    for name in ("editor_ema", "discriminator"):
        for key, value in networks[name].items():
            assert torch.equal(
                packed["networks"][name][key], value.half() if value.is_floating_point() else value
            )

    for wrong, message in (
        (("old-to-young", first), "not one of the packed edits"),
        (("open-mouth", first), "an `edit` run of Mouth_Slightly_Open is needed"),
        (("male-to-female", tmp_path), "no checkpoint"),
    ):
        with pytest.raises(PackError, match=message):
            build_pack(PackOptions(**{**options.__dict__, "out": tmp_path / "p2", "continue_from": (wrong,)}))

    second = tmp_path / "second"
    command = [
        sys.executable, "-m", "trainer.cli", "fleet", str(pack), "--minutes", "0.1",
        "--out", str(second), "--work", str(tmp_path / "work"), "--device", "cpu",
        "--batch-size", "2", "--transform-width", "4", "--discriminator-width", "4",
        "--evaluate-faces", "4", "--two-sample-steps", "2",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPOSITORY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    edits = json.loads((second / "fleet.json").read_text())["edits"]
    assert edits["male-to-female"]["continued_from"] == str(pack / "init" / "male-to-female")
    assert "continued_from" not in edits["open-mouth"]
    config = json.loads(next((tmp_path / "work" / "runs").glob("*male-to-female*/config.json")).read_text())
    assert config["init_transform"] == str(pack / "init" / "male-to-female")
    assert config["init_discriminator"] == str(pack / "init" / "male-to-female")  # against the D it met
    # the exported model's manifest counts both sessions (the card shows them as two rows)
    with tarfile.open(second / "male-to-female.tar.gz") as archive:
        archive.extractall(tmp_path / "back", filter="data")
    model = json.loads((tmp_path / "back" / "male-to-female" / "model" / "manifest.json").read_text())
    earlier = model["training"]["transform"]["continued_from"]
    assert earlier["run"] == str(first)
    assert earlier["steps"] == manifest["continue"]["male-to-female"]["steps"]


def test_a_fleet_trains_the_classifiers_its_pack_lacks_and_fleet_import_carries_them(
    labelled, tmp_path: Path
) -> None:
    """`pack --classifiers-on-device` carries no guides or evaluators; the fleet trains them first, its
    edits train with the new guide and are judged by the new evaluator, and they come back in
    classifiers.tar.gz; `fleet-import --install-classifiers` carries them, and they judge the import."""
    data, _ = labelled
    pack = tmp_path / "pack"
    manifest = build_pack(
        PackOptions(
            data=data,
            out=pack,
            runs_dir=tmp_path / "no-runs",
            edits=("male-to-female",),
            heldout_faces=4,
            classifiers_on_device=True,
            check_budget=False,
        )
    )
    assert manifest["classifiers_on_device"] and manifest["guides"] == manifest["evaluators"] == {}
    assert "no classifiers (the fleet trains them on the device)" in manifest["traded"]
    assert not (pack / "runs").exists()
    out, work = tmp_path / "out", tmp_path / "work"
    command = [
        sys.executable, "-m", "trainer.cli", "fleet", str(pack), "--minutes", "0.05",
        "--out", str(out), "--work", str(work), "--device", "cpu",
        "--batch-size", "2", "--transform-width", "4", "--discriminator-width", "4",
        "--evaluate-faces", "4", "--two-sample-steps", "2",
        "--guide-steps", "3", "--evaluator-steps", "2", "--classifier-batch-size", "4",
        "--classifier-augment", "blur",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=REPOSITORY)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "fleet: evaluator Male: held-out balanced accuracy" in done.stdout
    summary = json.loads((out / "fleet.json").read_text())
    assert sorted(summary["files"]) == ["classifiers.tar.gz", "fleet.json", "male-to-female.tar.gz"]
    assert check_results(out) == []
    config = json.loads(next((work / "runs").glob("*male-to-female*/config.json")).read_text())
    assert config["attribute_classifier"] == str(work / "classifiers" / "guide-Male")
    guide = json.loads((work / "classifiers" / "guide-Male" / "status.json").read_text())
    assert guide["step"] == 3 and guide["status"] == "done"
    guide_config = json.loads((work / "classifiers" / "guide-Male" / "config.json").read_text())
    assert (guide_config["stage"], guide_config["augment"]) == ("classify", "blur")  # the plan's recipe
    with tarfile.open(out / "male-to-female.tar.gz") as archive:
        archive.extractall(tmp_path / "back", filter="data")
    metrics = json.loads((tmp_path / "back" / "male-to-female" / "model" / "manifest.json").read_text())
    assert metrics["metrics"]["classifier"] == "evaluator-Male"  # judged on the GPU by the new evaluator

    root = tmp_path / "carried"
    options = ImportOptions(
        results=out,
        data=data,
        runs_dir=tmp_path / "no-runs",
        models=tmp_path / "models",
        work=tmp_path / "import",
        install_classifiers=True,
        classifiers_root=root,
        sizes=EvaluationSizes(two_sample_steps=5, grid_faces=2, grey_faces=2, already_target=4),
    )
    printed: list[str] = []
    rows = import_results(options, say=printed.append)
    assert sorted(p.name for p in root.iterdir()) == ["evaluator-Male", "guide-Male"]
    only = tmp_path / "only-the-guide"
    chosen = {"classifiers_root": only, "chosen_classifiers": ("guide-Male",), "evaluate": False}
    import_results(ImportOptions(**{**options.__dict__, **chosen}), say=lambda _text: None)
    assert sorted(p.name for p in only.iterdir()) == ["guide-Male"]
    assert any("evaluator Male" in line and "installed in" in line for line in printed)
    assert rows[0]["candidate"]["classifier"] == "evaluator-Male"  # measured here by the carried judge
    assert rows[0]["decision"] == "better — ship with --ship"
