"""Folders written beside their target and swapped in whole: a failed or interrupted write never damages
what was there (an installed model, a prepared dataset).

`staged(target)` yields a fresh sibling folder `.NAME.staging-PID`; when the block ends without an error it
replaces `target` by two renames on the same file system (the old folder moves aside to
`.NAME.replaced-PID`, the new one takes its name, the old one is deleted); on an error the staging folder
is deleted and `target` is untouched. Between the two renames `target` is missing for a moment; if the
second rename fails, the first is undone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def sibling(target: Path, tag: str) -> Path:
    """A hidden name beside `target` for this process, e.g. `.add-beard.staging-1234`."""
    return target.parent / f".{target.name}.{tag}-{os.getpid()}"


def replace_folder(new: Path, target: Path) -> None:
    """Move folder `new` to `target`, replacing whatever folder was there."""
    new, target = Path(new), Path(target)
    if not target.exists():
        os.replace(new, target)
        return
    aside = sibling(target, "replaced")
    shutil.rmtree(aside, ignore_errors=True)
    os.replace(target, aside)
    try:
        os.replace(new, target)
    except BaseException:
        os.replace(aside, target)
        raise
    shutil.rmtree(aside, ignore_errors=True)


@contextlib.contextmanager
def staged(target: Path, *, copy_existing: bool = False, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    """A staging folder that replaces `target` when the block succeeds.

    `copy_existing`: the staging folder starts as a copy of `target`'s files (so that files the writer
    does not rewrite survive, as with an in-place write), except the top-level names in `skip` (files
    about to be rewritten, or that must disappear)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = sibling(target, "staging")
    shutil.rmtree(staging, ignore_errors=True)
    if copy_existing and target.is_dir():
        shutil.copytree(
            target, staging, ignore=lambda d, names: [n for n in names if n in skip and Path(d) == target]
        )
    else:
        staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, target)
