"""`diat-studio-train fleet PACK --minutes M --out DIR`: train every edit of a pack at once on one GPU.

One process per edit (CUDA time-slices them on the one GPU; each its own bf16 autocast, large batch,
its own run folder under `work/runs`), all stopped cleanly at the same wall-clock deadline; then each is
exported (ONNX + manifest), evaluated on the pack's held-out faces (dlib-free: the identity network
comes from the pack) with the quality bar, and packed into `DIR/<edit>.tar.gz` as soon as it is done, with
`DIR/fleet.json` rewritten after each — so that a run cut short still leaves what was finished. The
results are at most 8 files of at most 16 MiB (one per edit + fleet.json, + classifiers.tar.gz where the
pack carried no classifiers and the fleet trained them first: trainer/fleet_classifiers.py), what the lent
machine returns. Each edit's tar holds its editor, weight average and discriminators (float16), so that
`pack --continue` can carry the next session on against the same D.

Nothing here imports dlib or Qt (tests/trainer/test_fleet.py runs it with both made unimportable).
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import tarfile
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from trainer.bundled_edits import EditSpec
from trainer.fleet_classifiers import CLASSIFIERS_FILE, ClassifierPlan, train_classifiers
from trainer.pack import IDENTITY_FILE, load_pack, pack_edits, unpack_dataset

FLEET_FILE = "fleet.json"
FLEET_FORMAT = "diat-fleet-1"
MAX_RESULT_FILES = 8
MAX_RESULT_BYTES = 16 * 2**20
MAX_RESULTS_TOTAL = 64 * 2**20
#: Files of each run folder that travel back (besides the slim checkpoint).
RUN_FILES = ("config.json", "status.json", "log.jsonl", "fleet.log", "error.txt")


@dataclass(frozen=True)
class FleetOptions:
    pack: Path
    out: Path
    minutes: float
    """Training wall time; export and evaluation follow (about a minute on the GPU machine)."""
    work: Path | None = None
    """Where the dataset is unpacked and the runs train (default: a temporary folder)."""
    edits: tuple[str, ...] = ()
    """A subset of the pack's edits (default: all of them)."""
    device: str = "auto"
    batch_size: int = 64
    transform_width: int = 32
    discriminator_width: int = 32
    lr: float = 2e-4
    ema_decay: float = 0.999
    evaluate_faces: int = 300
    two_sample_steps: int = 200
    """The GPU machine's preview: fewer than `evaluate`'s 600 (fleet-import measures with those at home)."""
    grid_faces: int = 16
    checkpoint_every: int = 500
    threads: int = 0
    """CPU threads per process (0: the machine's cores shared out)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """More TrainConfig fields for every edit (tests: tiny widths)."""
    edit_overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    """TrainConfig fields for one edit each ({edit: {field: value}}), over `overrides`: a component tried on
    one edit while the others go on as before."""
    classifiers: ClassifierPlan = field(default_factory=ClassifierPlan)
    """How the guides and evaluators are trained first, where the pack carries none."""


def run_fleet(options: FleetOptions, say: Callable[[str], None] = print) -> dict[str, Any]:
    """Train, export, evaluate and pack every edit; returns what fleet.json holds."""
    started = time.time()
    pack = Path(options.pack).resolve()
    manifest = load_pack(pack)
    specs = _chosen_edits(pack_edits(manifest), options.edits)
    unknown = sorted(set(options.edit_overrides) - {spec.name for spec in specs})
    if unknown:
        raise ValueError(
            f"--set for {', '.join(unknown)}: not an edit this fleet trains "
            f"({', '.join(spec.name for spec in specs)})"
        )
    on_device = bool(manifest.get("classifiers_on_device"))
    room = MAX_RESULT_FILES - 1 - on_device  # fleet.json (and classifiers.tar.gz)
    if len(specs) > room:
        raise ValueError(f"at most {room} edits: the results must fit in {MAX_RESULT_FILES} files")
    out = Path(options.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(options.work) if options.work else Path(tempfile.mkdtemp(prefix="diat-fleet-"))
    cores = os.cpu_count() or 1
    threads = options.threads or max(1, cores // len(specs))
    device = _device_name(options.device)
    summary: dict[str, Any] = {
        "format": FLEET_FORMAT,
        "pack": manifest.get("source"),
        "device": device,
        "minutes": options.minutes,
        "settings": {k: v for k, v in asdict(options).items() if k not in ("pack", "out", "work")},
        "edits": {},
    }
    say(f"fleet: {len(specs)} edits on {device}, {options.minutes:g} min of training; unpacking the faces…")
    dataset = unpack_dataset(pack, work / "dataset", workers=min(cores, 16))
    summary["unpack_seconds"] = round(time.time() - started, 1)

    attributes = sorted({spec.attribute for spec in specs})
    if on_device:
        found = train_classifiers(
            attributes, dataset, work, out, options.classifiers, options.device, max(1, cores // 8), say
        )
        summary["classifiers_file"] = CLASSIFIERS_FILE
        summary["classifiers_seconds"] = round(time.time() - started - summary["unpack_seconds"], 1)
        guides, evaluators = found["guide"], found["evaluator"]
    else:
        guides = {a: pack / "runs" / f"guide-{a}" for a in attributes}
        evaluators = {a: pack / "runs" / f"evaluator-{a}" for a in attributes}
    continued = manifest.get("continue", {})
    runs = {
        spec.name: _new_run(
            spec,
            options,
            pack,
            continued.get(spec.name),
            dataset,
            work / "runs",
            threads,
            guides[spec.attribute],
        )
        for spec in specs
    }
    deadline = time.time() + 60 * options.minutes
    context = mp.get_context("spawn")
    stop = context.Event()
    processes = {
        name: context.Process(target=_train_edit, args=(str(run), deadline, stop, threads), name=name)
        for name, run in runs.items()
    }
    for process in processes.values():
        process.start()
    try:
        _watch(processes, runs, deadline, say)
    except KeyboardInterrupt:
        say("fleet: interrupted — every edit stops after its step and saves a checkpoint")
        stop.set()
        for process in processes.values():
            process.join()
    summary["training_seconds"] = round(
        time.time() - started - summary["unpack_seconds"] - summary.get("classifiers_seconds", 0), 1
    )

    models = work / "models"
    with ProcessPoolExecutor(len(specs), mp_context=context) as pool:
        futures = {
            pool.submit(
                _finish_edit,
                spec.to_dict(),
                str(runs[spec.name]),
                str(models),
                str(pack),
                str(evaluators[spec.attribute]),
                options,
                threads,
            ): spec.name
            for spec in specs
            if processes[spec.name].exitcode == 0
        }
        for name in runs:
            if processes[name].exitcode != 0:
                summary["edits"][name] = _packed(name, runs[name], None, out, _error(runs[name]))
                _write_summary(out, summary, started)
        for future in as_completed(futures):
            name = futures[future]
            try:
                model_dir, error = Path(future.result()), None
            except Exception as exc:  # one edit failing never costs the others their results
                model_dir, error = None, f"{type(exc).__name__}: {exc}"
            summary["edits"][name] = _packed(name, runs[name], model_dir, out, error)
            entry = summary["edits"][name]
            verdict = entry.get("verdict", entry["status"])
            say(f"fleet: {name} packed ({entry['bytes'] / 2**20:.1f} MiB) — {verdict}")
            _write_summary(out, summary, started)
    return _write_summary(out, summary, started)


# -- training ----------------------------------------------------------------------------------------------


def _chosen_edits(specs: list[EditSpec], names: tuple[str, ...]) -> list[EditSpec]:
    if not names:
        return specs
    known = {spec.name: spec for spec in specs}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"the pack has no edit {unknown[0]!r} (it has: {', '.join(known)})")
    return [known[name] for name in names]


def _device_name(device: str) -> str:
    if device in ("auto", "cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    if device == "cuda":
        raise ValueError("--device cuda requested but torch sees no CUDA device")
    return "cpu"


def _new_run(
    spec: EditSpec,
    options: FleetOptions,
    pack: Path,
    continued: dict[str, Any] | None,
    dataset: Path,
    runs_dir: Path,
    threads: int,
    guide: Path,
) -> Path:
    from trainer.config import TrainConfig
    from trainer.runs import CONFIG_FILE, new_run_folder

    fields = spec.config_fields()
    width = options.transform_width
    discriminator_width = options.discriminator_width
    if continued:  # a second session: this edit goes on from the packed editor, at that editor's width
        fields["init_transform"] = str(pack / "init" / spec.name)
        width = int(continued["transform_width"])
        if "discriminator_width" in continued:  # and against the D that knows it (an earlier fleet's)
            fields["init_discriminator"] = str(pack / "init" / spec.name)
            discriminator_width = int(continued["discriminator_width"])
    config = TrainConfig(
        **{
            **fields,
            "data": str(dataset),
            "runs_dir": str(runs_dir),
            "steps": 10_000_000,  # the deadline stops it
            "batch_size": options.batch_size,
            "lr": options.lr,
            "transform_width": width,
            "discriminator_width": discriminator_width,
            "ema_decay": options.ema_decay,
            "attribute_classifier": str(guide),
            "identity_weights": str(pack / IDENTITY_FILE),
            "device": options.device,
            "threads": threads,
            "log_every": 25,
            "sample_every": 10_000_000,
            "checkpoint_every": options.checkpoint_every,
            **options.overrides,
            **options.edit_overrides.get(spec.name, {}),
        }
    )
    run = new_run_folder(runs_dir, "edit", spec.name)
    (run / CONFIG_FILE).write_text(config.to_json())
    return run


def _train_edit(run: str, deadline: float, stop: Any, threads: int) -> None:
    """One edit's training process: the shared training loop until the deadline (or the stop event)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    run_dir = Path(run)
    try:
        from trainer.config import TrainConfig
        from trainer.runs import CONFIG_FILE
        from trainer.training_loop import training_loop

        torch.set_num_threads(threads)
        if torch.cuda.is_available():
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        config = TrainConfig.load(run_dir / CONFIG_FILE)
        log = open(run_dir / "fleet.log", "a")  # noqa: SIM115 - open for the whole run
        begun = time.time()
        last = [begun]

        def progress(step: int, _total: int, _losses: dict[str, float]) -> None:
            now = time.time()
            if now - last[0] >= 15:
                last[0] = now
                rate = step * config.batch_size / max(now - begun, 1e-9)
                left = max(0.0, deadline - now)
                log.write(
                    f"step {step}  {rate:.0f} images/s  {_clock(now - begun)} elapsed  {_clock(left)} left\n"
                )
                log.flush()

        result = training_loop(
            config,
            run_dir,
            progress=progress,
            should_abort=lambda: time.time() >= deadline or stop.is_set(),
        )
        log.write(f"stopped at step {result['step']} after {result['session_seconds']:.0f} s\n")
        log.close()
    except BaseException:
        (run_dir / "error.txt").write_text(traceback.format_exc())
        raise


def _watch(
    processes: dict[str, Any], runs: dict[str, Path], deadline: float, say: Callable[[str], None]
) -> None:
    """Print each edit's step and rate every 30 s until every process has ended."""
    last = time.time()
    while any(p.is_alive() for p in processes.values()):
        time.sleep(1)
        if time.time() - last < 30:
            continue
        last = time.time()
        parts = []
        for name, run in runs.items():
            record = _last_log(run)
            parts.append(
                f"{name} {record.get('step', 0)} ({record.get('images_per_second', 0):.0f} img/s)"
                if record
                else f"{name} starting"
            )
        say(f"fleet: {_clock(max(0.0, deadline - time.time()))} left — " + ", ".join(parts))


def _last_log(run: Path) -> dict[str, Any]:
    from trainer.runs import LOG_FILE, JsonlLog

    records = [r for r in JsonlLog(run / LOG_FILE).read() if "losses" in r]
    return records[-1] if records else {}


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


# -- export, evaluation, results ---------------------------------------------------------------------------


def _finish_edit(
    spec: dict[str, Any],
    run: str,
    models: str,
    pack: str,
    evaluator: str,
    options: FleetOptions,
    threads: int,
) -> str:
    """Export the edit's weight average and evaluate it on the pack's held-out faces (no dlib)."""
    from trainer.evaluate import EvaluationSizes, evaluate_model
    from trainer.export import export_model

    torch.set_num_threads(threads)
    name = spec["name"]
    model_dir = export_model(Path(run), Path(models) / name, name=name, experimental=True)
    evaluate_model(
        model_dir,
        Path(run_config_data(Path(run))),
        Path(evaluator),
        quality_bar=True,
        sizes=EvaluationSizes(
            limit=options.evaluate_faces,
            two_sample_steps=options.two_sample_steps,
            grid_faces=options.grid_faces,
            already_target=min(100, options.evaluate_faces),
        ),
        identity_weights=Path(pack) / IDENTITY_FILE,
        photos=False,
    )
    return str(model_dir)


def run_config_data(run: Path) -> str:
    from trainer.runs import run_config

    return str(run_config(run)["data"])


def _error(run: Path) -> str:
    path = run / "error.txt"
    return path.read_text()[-2000:] if path.is_file() else "the training process ended without a result"


def _packed(name: str, run: Path, model_dir: Path | None, out: Path, error: str | None) -> dict[str, Any]:
    """Pack one edit's results into out/<name>.tar.gz (atomically); the summary entry for fleet.json."""
    status = _read_json(run / "status.json")
    entry: dict[str, Any] = {
        "status": "failed" if error else "done",
        "steps": status.get("step", 0),
        "train_seconds": status.get("session_seconds"),
        "images_per_second": _rate(run, status),
        "file": f"{name}.tar.gz",
    }
    if error:
        entry["error"] = error
    init = _read_json(run / "config.json").get("init_transform")
    if init:
        entry["continued_from"] = init
    if model_dir is not None:
        report = _read_json(model_dir / "evaluation.json")
        metrics = report.get("metrics", {})
        entry["metrics"] = metrics
        missed = report.get("quality_bar_missed", [])
        entry["verdict"] = "meets the quality bar" if not missed else f"misses {len(missed)} targets"
    checkpoint = _slim_checkpoint(run)
    for with_checkpoint in (True, False):
        path = _write_tar(out / entry["file"], name, run, model_dir, checkpoint if with_checkpoint else None)
        entry["bytes"] = path.stat().st_size
        entry["checkpoint"] = with_checkpoint and checkpoint is not None
        if entry["bytes"] <= MAX_RESULT_BYTES:
            break
    if entry["bytes"] > MAX_RESULT_BYTES:
        raise ValueError(f"{name}'s results are {entry['bytes']} bytes, over {MAX_RESULT_BYTES}")
    return entry


def _rate(run: Path, status: dict[str, Any]) -> float | None:
    config = _read_json(run / "config.json")
    seconds = status.get("session_seconds")
    if not seconds or not status.get("step"):
        return None
    return round(status["step"] * config.get("batch_size", 0) / seconds, 1)


def _slim_checkpoint(run: Path) -> Path | None:
    """The edit's editor, its weight average and its discriminators (float16, no optimiser state): enough
    to continue it with `--init-transform` and `--init-discriminator` (or `pack --continue`)."""
    from trainer.runs import CHECKPOINT

    path = run / CHECKPOINT
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    networks = {
        name: {k: (v.half() if torch.is_floating_point(v) else v) for k, v in net.items()}
        for name, net in state["networks"].items()
        if name in ("editor", "editor_ema", "discriminator", "region_discriminator")
    }
    slim = run / "slim-checkpoint.pt"
    torch.save({"networks": networks, "step": state.get("step")}, slim)
    return slim


def _write_tar(path: Path, name: str, run: Path, model_dir: Path | None, checkpoint: Path | None) -> Path:
    from trainer.runs import CHECKPOINT

    temp = path.with_name(f".{path.name}.part")
    with tarfile.open(temp, "w:gz", compresslevel=6) as archive:
        if model_dir is not None:
            for file in sorted(model_dir.iterdir()):
                if file.is_file():
                    archive.add(file, f"{name}/model/{file.name}")
        for file_name in RUN_FILES:
            if (run / file_name).is_file():
                archive.add(run / file_name, f"{name}/run/{file_name}")
        if checkpoint is not None:
            archive.add(checkpoint, f"{name}/run/{CHECKPOINT}")
    os.replace(temp, path)
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _write_summary(out: Path, summary: dict[str, Any], started: float) -> dict[str, Any]:
    summary["wall_seconds"] = round(time.time() - started, 1)
    classifiers = [summary["classifiers_file"]] if "classifiers_file" in summary else []
    summary["files"] = [
        *sorted(entry["file"] for entry in summary["edits"].values()),
        *classifiers,
        FLEET_FILE,
    ]
    temp = out / f".{FLEET_FILE}.part"
    temp.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(temp, out / FLEET_FILE)
    return summary


def check_results(out: Path) -> list[str]:
    """What breaks the lent machine's limits on returned files (empty: nothing)."""
    files = [p for p in Path(out).rglob("*") if p.is_file()]
    problems = []
    if len(files) > MAX_RESULT_FILES:
        problems.append(f"{len(files)} files, over {MAX_RESULT_FILES}")
    problems += [f"{p.name}: {p.stat().st_size} bytes" for p in files if p.stat().st_size > MAX_RESULT_BYTES]
    if sum(p.stat().st_size for p in files) > MAX_RESULTS_TOTAL:
        problems.append("over 64 MiB together")
    return problems
