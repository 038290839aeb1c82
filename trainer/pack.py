"""`diat-studio-train pack`: everything a lent GPU machine needs to train the bundled edits, in one folder
small enough to travel beside the repository (64 MiB in all), readable without dlib.

    PACK/
      pack.json                   what is inside, what was traded to fit, the edits
      dataset/faces.bin           the aligned crops, each a lossy WebP (`quality`), back to back
      dataset/faces-offsets.npy   where each crop starts and ends in faces.bin
      dataset/landmarks.npy       crop-space landmarks, float16 (< 0.03 px error at 128 px)
      dataset/labels.csv          index, file, split and the edits' attributes only
      dataset/prepare.json        the source dataset's prepare.json (template, licence, source)
      identity.pt                 dlib's face-recognition ResNet (float16) + the crop → chip map
      runs/guide-<Attribute>/     the frozen guide classifiers (networks only, float16)
      runs/evaluator-<Attribute>/ the evaluators of `evaluate` (networks only, float16)
      init/<edit>/                with --continue: the editor (weight average, float16) an edit goes on from

Every training face travels, in the source's order (so the developers' split is the same faces); of the
held-out faces a stratified sample does (`heldout_faces`: every attribute value of every edit is
represented), for the evaluation and grids on the GPU — the held-out numbers that decide what ships are
measured here afterwards on all of them (`fleet-import`). `unpack_dataset` turns the folder back into a
prepared dataset (trainer.data) on the GPU machine.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from PIL import Image

from trainer.bundled_edits import EditSpec, edit_specs
from trainer.classifier_store import CLASSIFIERS_DIR, KINDS, find_classifier
from trainer.data import PreparedDataset
from trainer.model_import import ModelImportError, editor_state, is_model_folder, read_model_editor
from trainer.runs import CHECKPOINT, CONFIG_FILE, LOG_FILE, STATUS_FILE, JsonlLog, RunError, run_config

PACK_FORMAT = "diat-pack-1"
PACK_FILE = "pack.json"
IDENTITY_FILE = "identity.pt"
#: What may travel to the lent machine in all: the repository's files plus the pack.
TRAVEL_BUDGET = 64 * 2**20
#: Room kept free in that budget for files the repository gains before the run.
TRAVEL_MARGIN = 2 * 2**20
#: An edit run's discriminators, carried beside its editor by `--continue`.
DISCRIMINATORS = ("discriminator", "region_discriminator")


class PackError(ValueError):
    pass


@dataclass(frozen=True)
class PackOptions:
    data: Path
    out: Path
    runs_dir: Path = Path("runs")
    edits: tuple[str, ...] = ()
    quality: int = 88
    """WebP quality of the crops (88: ≈ 2.8 kB a 128 px face, 40 dB; JPEG at 90 needs ≈ 4.9 kB, and at 90
    the pack and the repository no longer fit in 64 MiB together)."""
    heldout_faces: int = 300
    max_train_faces: int = 0
    """0: every training face. Fewer changes the developers' split (it is drawn from the training faces)."""
    guides: tuple[tuple[str, Path], ...] = ()
    """(attribute, run) overrides; default: the newest finished `runs/*-classify-guide-<attribute>`."""
    evaluators: tuple[tuple[str, Path], ...] = ()
    """(attribute, run) overrides; default: the newest finished `runs/*-evaluator-<attribute>-classifier`."""
    continue_from: tuple[tuple[str, Path], ...] = ()
    """(edit, `edit` run) pairs: that edit's fleet run starts from the run's editor (its weight average,
    float16, in `init/<edit>/`) instead of from the identity — a second GPU session goes on where the
    first stopped (the run folders `fleet-import` unpacks, or a CPU run of the same width). The run may
    also be an installed model's folder (resources/models/<edit>: what a fresh checkout has)."""
    classifiers_root: Path | None = None
    """Where the repository's classifiers are (default: trainer.classifier_store.CLASSIFIERS_DIR; tests)."""
    classifiers_on_device: bool = False
    """No guides or evaluators travel: the fleet trains them first on the lent machine (a minute or two on
    a GPU against two CPU hours here) and brings them back (`classifiers.tar.gz`)."""
    force: bool = False
    check_budget: bool = True


def build_pack(options: PackOptions) -> dict[str, Any]:
    """Write the pack (atomically: into a temporary sibling, then swapped in); returns pack.json."""
    specs = edit_specs(options.edits)
    attributes = sorted({spec.attribute for spec in specs})
    dataset = PreparedDataset.open(options.data)
    missing = [a for a in attributes if a not in dataset.labels]
    if missing:
        raise PackError(
            f"{options.data} has no {missing[0]!r} labels (the edits need {', '.join(attributes)})"
        )
    guides: dict[str, Path] = {}
    evaluators: dict[str, Path] = {}
    if not options.classifiers_on_device:  # else the fleet trains them on the device
        root = options.classifiers_root
        guides = _runs(options.runs_dir, attributes, dict(options.guides), "guide", root)
        evaluators = _runs(options.runs_dir, attributes, dict(options.evaluators), "evaluator", root)
    continued = _continued_runs(options.continue_from, specs)
    out = Path(options.out)
    if out.exists() and not options.force:
        raise PackError(f"{out} exists: pass --force to replace it")
    if not 1 <= options.quality <= 100:
        raise PackError(f"--quality must be 1..100, got {options.quality}")

    rows = _chosen_rows(dataset, attributes, options.heldout_faces, options.max_train_faces)
    out.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        info = _write_dataset(dataset, rows, attributes, temp / "dataset", options.quality)
        from trainer.identity import save_identity_weights  # dlib: here, on the CPU side only

        save_identity_weights(temp / IDENTITY_FILE, [dataset.template])
        for attribute in guides:
            slim_run(guides[attribute], temp / "runs" / f"guide-{attribute}", "discriminator")
            slim_run(evaluators[attribute], temp / "runs" / f"evaluator-{attribute}", "classifier")
        steps = {
            name: _slim_model(run, temp / "init" / name)
            if is_model_folder(run)
            else slim_run(run, temp / "init" / name, "editor_ema", DISCRIMINATORS)
            for name, run in continued.items()
        }
        manifest = {
            "format": PACK_FORMAT,
            "source": str(Path(options.data).resolve()),
            "edits": [spec.to_dict() for spec in specs],
            "faces": info,
            "crop_size": dataset.size,
            "encoding": f"WebP quality {options.quality} (lossy, 4:2:0)",
            "traded": _traded(info, options),
            "guides": {a: str(guides[a]) for a in guides},
            "evaluators": {a: str(evaluators[a]) for a in evaluators},
            "classifiers_on_device": options.classifiers_on_device,
            "continue": {
                name: {
                    "run": str(run),
                    "steps": steps[name],
                    "transform_width": _width(run),
                    **_discriminator_width(temp / "init" / name),
                }
                for name, run in continued.items()
            },
        }
        manifest["bytes"] = _folder_bytes(temp)
        (temp / PACK_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        if options.check_budget:
            _check_budget(manifest["bytes"])
        if out.exists():
            shutil.rmtree(out)
        os.replace(temp, out)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return manifest


def load_pack(pack: Path) -> dict[str, Any]:
    path = Path(pack) / PACK_FILE
    if not path.is_file():
        raise PackError(f"{pack} is not a pack (no {PACK_FILE}): build one with `diat-studio-train pack`")
    manifest = json.loads(path.read_text())
    if manifest.get("format") != PACK_FORMAT:
        raise PackError(f"{pack}: unknown pack format {manifest.get('format')!r}")
    return manifest


def pack_edits(manifest: dict[str, Any]) -> list[EditSpec]:
    return [EditSpec.from_dict(edit) for edit in manifest["edits"]]


def unpack_dataset(pack: Path, out: Path, workers: int = 8) -> Path:
    """Decode the pack's crops into a prepared dataset folder at `out` (kept if already complete)."""
    source = Path(pack) / "dataset"
    if (out / "prepare.json").is_file() and (out / "crops.npy").is_file():
        return out
    offsets = np.load(source / "faces-offsets.npy")
    blob = np.fromfile(source / "faces.bin", np.uint8)
    info = json.loads((source / "prepare.json").read_text())
    size = int(info["template"]["size"])
    out.mkdir(parents=True, exist_ok=True)
    crops = np.lib.format.open_memmap(
        out / ".crops.npy.part", mode="w+", dtype=np.uint8, shape=(len(offsets) - 1, size, size, 3)
    )

    def decode(index: int) -> None:
        image = cv2.imdecode(blob[offsets[index] : offsets[index + 1]], cv2.IMREAD_COLOR)
        if image is None or image.shape != (size, size, 3):
            raise PackError(f"{pack}: crop {index} does not decode to {size}×{size}")
        crops[index] = image[..., ::-1]

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(pool.map(decode, range(len(crops))))
    crops.flush()
    os.replace(out / ".crops.npy.part", out / "crops.npy")
    np.save(out / "landmarks.npy", np.load(source / "landmarks.npy").astype(np.float32))
    shutil.copyfile(source / "labels.csv", out / "labels.csv")
    (out / "prepare.json").write_text(json.dumps(info, indent=2) + "\n")  # last: marks it complete
    return out


# -- building ----------------------------------------------------------------------------------------------


def _runs(
    runs_dir: Path, attributes: list[str], given: dict[str, Path], kind: str, root: Path | None = None
) -> dict[str, Path]:
    """The classifier run of each attribute: given, else the newest finished one in `runs_dir`, else the
    one the repository carries (trainer.classifier_store)."""
    stage = KINDS[kind][0]
    found: dict[str, Path] = {}
    for attribute in attributes:
        if attribute in given:
            run = Path(given[attribute])
        else:
            chosen = find_classifier(runs_dir, kind, attribute, root)
            if chosen is None:
                raise PackError(
                    f"no finished {KINDS[kind][2].format('NNNNN', attribute)} run in {runs_dir} and none "
                    f"carried in {root or CLASSIFIERS_DIR}: train it first "
                    "(scripts/train_bundled.sh classifiers), or pack with --classifiers-on-device"
                )
            run = chosen
        config = run_config(run)
        if config.get("stage") != stage or config.get("attribute") != attribute:
            raise PackError(
                f"{run} is a '{config.get('stage')}' run for {config.get('attribute')!r}, "
                f"not a '{stage}' run for {attribute!r}"
            )
        if not (run / CHECKPOINT).is_file():
            raise PackError(f"{run} has no checkpoint")
        found[attribute] = run
    return found


def _chosen_rows(
    dataset: PreparedDataset, attributes: list[str], heldout_faces: int, max_train: int
) -> np.ndarray:
    """Every training face (or the first `max_train`, in order) and a stratified held-out sample."""
    train = dataset.indices("train")
    if max_train > 0:
        train = train[:max_train]
    heldout = dataset.indices("heldout")
    if heldout_faces <= 0:
        return train
    rng = np.random.default_rng(0)
    order = heldout[rng.permutation(len(heldout))]
    strata = [(a, v) for a in attributes for v in (0, 1)]
    per_stratum = max(1, heldout_faces // (2 * max(len(strata), 1)))
    chosen: set[int] = set()
    for attribute, value in strata:  # each value of each attribute, then the rest at random
        with_value = [int(r) for r in order if dataset.labels[attribute][r] == value]
        chosen.update(with_value[:per_stratum])
    for row in order.tolist():
        if len(chosen) >= heldout_faces:
            break
        chosen.add(row)
    sample = sorted(chosen)
    return np.sort(np.concatenate([train, np.array(sample, dtype=train.dtype)]))


def _write_dataset(
    dataset: PreparedDataset, rows: np.ndarray, attributes: list[str], out: Path, quality: int
) -> dict[str, Any]:
    out.mkdir(parents=True)
    offsets = [0]
    with open(out / "faces.bin", "wb") as blob:
        for row in rows.tolist():
            encoded = io.BytesIO()  # libwebp's slowest, smallest method: 3% below OpenCV's at equal quality
            Image.fromarray(np.asarray(dataset.crops[row])).save(encoded, "WEBP", quality=quality, method=6)
            blob.write(encoded.getvalue())
            offsets.append(offsets[-1] + encoded.tell())
    np.save(out / "faces-offsets.npy", np.array(offsets, np.int64))
    np.save(out / "landmarks.npy", dataset.landmarks[rows].astype(np.float16))
    with open(out / "labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "file", "split", *attributes])
        for new, row in enumerate(rows.tolist()):
            values = [int(dataset.labels[a][row]) for a in attributes]
            writer.writerow([new, dataset.files[row], dataset.split[row], *values])
    info = dict(dataset.info)
    info["packed_from"] = str(dataset.folder)
    (out / "prepare.json").write_text(json.dumps(info, indent=2) + "\n")
    splits = dataset.split[rows]
    return {
        "train": int((splits == "train").sum()),
        "heldout": int((splits == "heldout").sum()),
        "train_in_source": int((dataset.split == "train").sum()),
        "heldout_in_source": int((dataset.split == "heldout").sum()),
        "bytes_per_face": round(offsets[-1] / max(len(rows), 1), 1),
    }


def _continued_runs(given: tuple[tuple[str, Path], ...], specs: list[EditSpec]) -> dict[str, Path]:
    """The edits to continue and their runs, checked: a packed edit, a finished-or-stopped `edit` run of
    the same attribute and direction with a checkpoint, or an installed model's folder of that edit."""
    names = {spec.name: spec for spec in specs}
    runs: dict[str, Path] = {}
    for name, run in given:
        if name not in names:
            packed = ", ".join(names)
            raise PackError(f"--continue {name}=…: {name!r} is not one of the packed edits ({packed})")
        if name in runs:
            raise PackError(f"--continue names {name!r} twice")
        run = Path(run)
        spec = names[name]
        if is_model_folder(run):  # an installed model (a bundled one on a fresh checkout)
            try:
                model = read_model_editor(run)
            except ModelImportError as exc:
                raise PackError(f"--continue {name}=…: {exc}") from None
            if (model.attribute, model.direction) != (spec.attribute, spec.direction):
                raise PackError(
                    f"--continue {name}={run}: a model of {spec.attribute} ({spec.direction}) is needed, "
                    f"that one edits {model.attribute} ({model.direction})"
                )
            runs[name] = run
            continue
        if not (run / CHECKPOINT).is_file():
            raise PackError(f"--continue {name}={run}: no checkpoint ({CHECKPOINT}) there")
        config = run_config(run)
        if config.get("stage") != "edit" or config.get("attribute") != spec.attribute:
            raise PackError(
                f"--continue {name}={run}: an `edit` run of {spec.attribute} is needed, that is a "
                f"`{config.get('stage')}` run of {config.get('attribute')}"
            )
        if config.get("direction") != spec.direction:
            raise PackError(f"--continue {name}={run}: it edits the other way ({config.get('direction')})")
        runs[name] = run
    return runs


def _discriminator_width(init: Path) -> dict[str, int]:
    """{"discriminator_width": W} where the packed editor came with its D (a fleet run's), else {}."""
    networks = torch.load(init / CHECKPOINT, map_location="cpu", weights_only=False)["networks"]
    if "discriminator" not in networks:
        return {}
    return {"discriminator_width": int(run_config(init)["discriminator_width"])}


def _width(run: Path) -> int:
    if is_model_folder(run):
        return read_model_editor(run).transform_width
    return int(run_config(run)["transform_width"])


def _slim_model(folder: Path, out: Path) -> int:
    """An installed model as the slim run `slim_run` writes (its editor from the ONNX file as
    "editor_ema"; a config with what `load_trained` and the fleet read); returns the steps of the run that
    trained the model."""
    model = read_model_editor(folder)
    transform = model.training.get("transform") or {}
    # float16 where the file stored it so (the conv weights), float32 where it did not (biases, norms)
    state = {
        key: value.half() if torch.equal(value.half().float(), value) else value
        for key, value in editor_state(folder).items()
    }
    (out / "checkpoints").mkdir(parents=True)
    steps = int(transform.get("steps") or 0)
    torch.save({"networks": {"editor_ema": state}, "step": steps}, out / CHECKPOINT)
    config = {
        **model.run_settings(),
        "batch_size": transform.get("batch_size"),
        "packed_from": f"{folder} ({model.name}, run {transform.get('run')})",
    }
    if isinstance(transform.get("continued_from"), dict):  # the runs before it, for the manifest's chain
        config["continued_from"] = transform["continued_from"]
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    # what trained the model, as a run's status says it (export reads it into the next manifest's chain)
    status = {key: transform.get(key) for key in ("seconds", "device", "world_size")}
    (out / STATUS_FILE).write_text(json.dumps({"status": "done", "step": steps, **status}, indent=2) + "\n")
    return steps


def slim_run(run: Path, out: Path, network: str, carried: tuple[str, ...] = (), half: bool = True) -> int:
    """A run reduced to what `load_trained` and `evaluate` read: its config, the one network (float16
    unless `half` is False: a judge the repository carries keeps its exact weights) and the last held-out
    record of its log (the evaluator's accuracy); returns the checkpoint's step. `carried`: more networks
    that travel where the run has them (an edit's D and region D, so that the fleet goes on against the D
    that knows the editor instead of a fresh one)."""
    checkpoint = torch.load(run / CHECKPOINT, map_location="cpu", weights_only=False)
    networks = checkpoint.get("networks", {})
    if network == "editor_ema" and network not in networks:  # a run trained without the average
        network = "editor"
    if network not in networks:
        raise RunError(f"{run} has no network '{network}'")
    kept = {network: networks[network], **{name: networks[name] for name in carried if name in networks}}
    slim = {
        name: {k: (v.half() if half and torch.is_floating_point(v) else v) for k, v in state.items()}
        for name, state in kept.items()
    }
    (out / "checkpoints").mkdir(parents=True)
    torch.save({"networks": slim, "step": checkpoint.get("step")}, out / CHECKPOINT)
    config = run_config(run)
    config["packed_from"] = str(run)
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    if (run / STATUS_FILE).is_file():
        shutil.copyfile(run / STATUS_FILE, out / STATUS_FILE)
    heldout = [r for r in JsonlLog(run / LOG_FILE).read() if "heldout" in r]
    (out / LOG_FILE).write_text("".join(json.dumps(r) + "\n" for r in heldout[-1:]))
    return int(checkpoint.get("step") or 0)


def _traded(info: dict[str, Any], options: PackOptions) -> str:
    left_out = info["train_in_source"] - info["train"]
    return (
        f"crops as lossy WebP at quality {options.quality} ({info['bytes_per_face']:.0f} bytes a face) "
        f"instead of raw pixels; {info['heldout']} of {info['heldout_in_source']} held-out faces "
        "(stratified: the evaluation on the GPU is a preview; fleet-import measures on all of them); "
        + (f"{left_out} training faces left out; " if left_out else "every training face; ")
        + "the identity network in float16; "
        + (
            "no classifiers (the fleet trains them on the device)"
            if options.classifiers_on_device
            else "classifiers as their networks only, in float16"
        )
    )


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def repository_bytes(root: Path | None = None) -> int | None:
    """Bytes of what travels from the repository: tracked files and untracked ones git does not ignore."""
    root = root or Path(__file__).resolve().parent.parent
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    total = 0
    for name in filter(None, listed.split(b"\0")):
        path = root / os.fsdecode(name)
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def _check_budget(pack_bytes: int) -> None:
    repository = repository_bytes()
    if repository is None:
        return
    total = pack_bytes + repository
    if total + TRAVEL_MARGIN > TRAVEL_BUDGET:
        mib = 2**20
        raise PackError(
            f"the pack ({pack_bytes / mib:.1f} MiB) and the repository ({repository / mib:.1f} MiB) make "
            f"{total / mib:.1f} MiB: over the {TRAVEL_BUDGET / mib:.0f} MiB that may travel (with "
            f"{TRAVEL_MARGIN / mib:.0f} MiB spare). Lower --quality, --heldout-faces or --max-train-faces"
        )
