"""The guide classifiers and evaluators the repository carries (trainer/classifiers/).

Every fresh machine used to spend two CPU hours training its own four guides and four evaluators, and a
judge retrained elsewhere is another judge: its numbers are not the cards' numbers. The repository
therefore carries one guide (`<guide>-<Attribute>`, the frozen attribute classifier of the edit recipe)
and one evaluator (`evaluator-<Attribute>`, the judge of `evaluate`) per bundled attribute, as slim runs
(config, status, the last held-out record of the log, the one network in float16: what `load_trained`
and `evaluate` read). A run of the same kind in the runs folder still comes first: whoever trains their
own uses their own.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from trainer.runs import CHECKPOINT, CONFIG_FILE, LOG_FILE, STATUS_FILE, JsonlLog, run_config

CLASSIFIERS_DIR = Path(__file__).resolve().parent / "classifiers"

#: kind → (the run's stage, the network its checkpoint holds, the run-name pattern in a runs folder)
KINDS = {
    "guide": ("classify", "discriminator", "{}-classify-guide-{}"),
    "evaluator": ("evaluator", "classifier", "{}-evaluator-{}-classifier"),
}


class ClassifierError(ValueError):
    pass


def carried(kind: str, attribute: str, root: Path | None = None) -> Path | None:
    """The repository's classifier of that kind for the attribute (None: it carries none)."""
    folder = Path(root or CLASSIFIERS_DIR) / f"{kind}-{attribute}"
    return folder if (folder / CHECKPOINT).is_file() else None


def newest_run(runs_dir: Path, kind: str, attribute: str) -> Path | None:
    """The newest finished run of that kind for the attribute in `runs_dir` (None: none)."""
    stage, _network, pattern = KINDS[kind]
    for run in sorted(Path(runs_dir).glob(pattern.format("[0-9]" * 5, attribute)), reverse=True):
        if _finished(run) and (run / CHECKPOINT).is_file() and run_config(run).get("stage") == stage:
            return run
    return None


def find_classifier(runs_dir: Path, kind: str, attribute: str, root: Path | None = None) -> Path | None:
    """A run trained here first, else the one the repository carries."""
    return newest_run(runs_dir, kind, attribute) or carried(kind, attribute, root)


def heldout_accuracy(run: Path) -> float | None:
    """The last held-out balanced accuracy a classifier run logged (None if it logged none)."""
    records = [r["heldout"] for r in JsonlLog(Path(run) / LOG_FILE).read() if "heldout" in r]
    return records[-1].get("heldout_balanced_accuracy") if records else None


def install(source: Path, kind: str, attribute: str, root: Path | None = None) -> Path:
    """Copy a slim classifier run (the fleet's classifiers.tar.gz, unpacked) into the repository's folder,
    replacing the one there atomically. It must be a finished run of the right stage and attribute."""
    stage = KINDS[kind][0]
    source = Path(source)
    config = run_config(source)
    if config.get("stage") != stage or config.get("attribute") != attribute:
        raise ClassifierError(
            f"{source} is a '{config.get('stage')}' run for {config.get('attribute')!r}, "
            f"not a '{stage}' run for {attribute!r}"
        )
    if not _finished(source):
        raise ClassifierError(f"{source} did not finish (its status.json does not say done)")
    if not (source / CHECKPOINT).is_file():
        raise ClassifierError(f"{source} has no checkpoint")
    root = Path(root or CLASSIFIERS_DIR)
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{kind}-{attribute}"
    temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=root))
    try:
        for name in (CONFIG_FILE, STATUS_FILE, LOG_FILE, CHECKPOINT):
            (temp / name).parent.mkdir(parents=True, exist_ok=True)
            if (source / name).is_file():
                shutil.copyfile(source / name, temp / name)
        old = root / f".{target.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        if target.exists():
            os.replace(target, old)
        os.replace(temp, target)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return target


def _finished(run: Path) -> bool:
    try:
        return json.loads((Path(run) / STATUS_FILE).read_text()).get("status") == "done"
    except (OSError, ValueError):
        return False
