"""Which entries of the input folder a batch reports on, and which of them it will read.

Every file gets a row, including those that are not read: hidden files, FIFOs, devices, sockets, broken
links and link loops are classified here from `stat` alone — nothing is opened (opening a FIFO blocks until
someone writes to it). With `recursive`, links to folders are followed, but each folder is walked once:
a real folder wins over a link to it, and a link back up the tree (a loop) or a second link to the same
folder gets a `skipped` row instead of its photos twice.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from diat_studio.core.atomic_files import file_kind
from diat_studio.core.batch_report import FileStatus
from diat_studio.core.image_io import is_image_path

Identity = tuple[int, int]
"""(st_dev, st_ino): what makes two paths the same folder."""


@dataclass(frozen=True)
class InputEntry:
    path: Path
    """Where the file is, below the input folder (possibly through links)."""
    relative: str
    """Path relative to the input folder, POSIX separators, as the file system spells it."""
    status: FileStatus | None = None
    """Decided without reading the file (skipped or error), or None: the file is a photo to process."""
    reason: str = ""


def scan_inputs(root: Path, *, recursive: bool, exclude: Path | None = None) -> list[InputEntry]:
    """Every entry below `root` (only its direct files unless `recursive`), sorted by relative path.

    `exclude` is a folder never walked into and not reported (the batch's own output folder).
    """
    excluded = _identity(exclude) if exclude is not None else None
    root_id = _identity(root)
    real = _real_folders(root) if recursive else {}
    walked: dict[Identity, str] = {root_id: ""} if root_id is not None else {}
    found: list[InputEntry] = []
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as listing:
                names = sorted(entry.name for entry in listing)
        except OSError as exc:
            found.append(InputEntry(folder, prefix or ".", FileStatus.ERROR, _cannot("list", exc)))
            continue
        subfolders: list[tuple[Path, str]] = []
        for name in names:
            path = folder / name
            relative = f"{prefix}/{name}" if prefix else name
            try:
                info = os.stat(path)
            except OSError as exc:
                found.append(_unreachable(path, relative, exc))
                continue
            if not stat.S_ISDIR(info.st_mode):
                found.append(_classify(path, relative, info))
                continue
            identity = (info.st_dev, info.st_ino)
            if identity == excluded or not recursive:
                continue
            if identity in walked:
                where = walked[identity]
                reason = (
                    f"the same folder as '{where}', walked once" if where else "a link to the input folder"
                )
                found.append(InputEntry(path, relative, FileStatus.SKIPPED, reason))
            elif identity in real and real[identity] != relative:
                reason = f"a link to the folder '{real[identity]}', whose photos are processed there"
                found.append(InputEntry(path, relative, FileStatus.SKIPPED, reason))
            else:
                walked[identity] = relative
                subfolders.append((path, relative))
        stack.extend(reversed(subfolders))  # depth first, in name order
    return sorted(found, key=lambda entry: entry.relative)


def _classify(path: Path, relative: str, info: os.stat_result) -> InputEntry:
    name = relative.rsplit("/", 1)[-1]
    if not stat.S_ISREG(info.st_mode):
        return InputEntry(
            path, relative, FileStatus.SKIPPED, f"not a regular file but {file_kind(info.st_mode)}"
        )
    if name.startswith("."):
        return InputEntry(path, relative, FileStatus.SKIPPED, "hidden file")
    if not is_image_path(name):
        return InputEntry(path, relative, FileStatus.SKIPPED, "not an image")
    return InputEntry(path, relative)


def _unreachable(path: Path, relative: str, exc: OSError) -> InputEntry:
    """A row for an entry that cannot even be stat'ed through its links."""
    if exc.errno == errno.ELOOP:
        return InputEntry(
            path, relative, FileStatus.ERROR, "symbolic link loop (the link leads back to itself)"
        )
    if exc.errno == errno.ENOENT and path.is_symlink():
        return InputEntry(path, relative, FileStatus.SKIPPED, "broken link: its target does not exist")
    return InputEntry(path, relative, FileStatus.ERROR, _cannot("read", exc))


def _cannot(verb: str, exc: OSError) -> str:
    return f"cannot {verb} ({exc.strerror or exc})"


def _identity(path: Path) -> Identity | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)


def _real_folders(root: Path) -> dict[Identity, str]:
    """Folders below `root` reached without following links, by identity, with their relative path."""
    folders: dict[Identity, str] = {}
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        folder, relative = stack.pop()
        try:
            info = os.stat(folder, follow_symlinks=False)
        except OSError:
            continue
        identity = (info.st_dev, info.st_ino)
        if identity in folders:  # a bind mount of a folder above: walked once
            continue
        folders[identity] = relative
        try:
            with os.scandir(folder) as listing:
                children = sorted(e.name for e in listing if e.is_dir(follow_symlinks=False))
        except OSError:
            continue
        stack.extend(
            (folder / name, f"{relative}/{name}" if relative else name) for name in reversed(children)
        )
    return folders
