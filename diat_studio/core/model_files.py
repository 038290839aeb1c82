"""Reading a model folder a stranger wrote: without hanging, without leaving the folder, bounded.

A model folder is untrusted input: its manifest.json may be a FIFO (opening it blocks until a writer
comes), its model file may be a symlink to a device or to a procfs file such as /proc/self/pagemap (which
`stat` calls a regular file of size 0 and which reads on for hundreds of gigabytes), or anything may be far
larger than any real model. `read_model_file` reads only a regular file, below a size cap, whose real path
(symlinks resolved) lies inside the model's folder; everything else is refused with an `UnsafeFileError`
that says why. `unsafe_character` and `shown` keep text from such a folder from driving a terminal.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from pathlib import Path

from diat_studio.core.errors import ModelError

#: Bidirectional formatting characters: they reorder what a terminal or a label shows ("Trojan Source").
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

#: Unicode categories never shown raw: control characters (C0 with ESC, DEL, C1), lone surrogates (they
#: cannot even be encoded for printing) and the line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})

_READ_BLOCK = 1 << 20


class UnsafeFileError(ModelError):
    """A model file is refused: not a regular file, too large, or it leads outside the model's folder."""


def unsafe_character(text: str, allowed: str = "") -> str | None:
    """The first character of `text` that must not be shown raw (control, bidi, separator), or None.

    Characters in `allowed` (e.g. "\\n\\t" for a multi-line description) are let through.
    """
    for char in text:
        if char in allowed:
            continue
        if char in BIDI_CONTROLS or unicodedata.category(char) in _UNSAFE_CATEGORIES:
            return char
    return None


def shown(text: str) -> str:
    """`text` with every unsafe character written as an escape (ESC → "\\x1b"): safe to print anywhere."""
    if unsafe_character(text) is None:
        return text
    return "".join(
        char.encode("unicode_escape").decode("ascii") if unsafe_character(char) is not None else char
        for char in text
    )


def resolve_inside(path: Path, folder: Path) -> Path:
    """The real path of `path` (every symlink resolved), which must lie inside the real path of `folder`.

    Raises FileNotFoundError (and other OSErrors: ELOOP for a symlink loop) when it cannot be resolved, and
    UnsafeFileError when it leads outside `folder`.
    """
    base = os.path.realpath(folder, strict=True)
    real = os.path.realpath(path, strict=True)
    if os.path.commonpath([base, real]) != base:
        raise UnsafeFileError(f"refused: it leads outside the model's folder (to {real})")
    return Path(real)


def read_model_file(path: Path, folder: Path, limit: int) -> bytes:
    """The bytes of `path`: a regular file of at most `limit` bytes whose real path is inside `folder`.

    Never blocks on a FIFO (checked with stat before opening, opened non-blocking) and never opens a
    device. A file that reads longer than its size (a procfs or sysfs file) is refused too. Raises
    UnsafeFileError for a refused file, OSError (FileNotFoundError among them) when it cannot be read.
    """
    real = resolve_inside(path, folder)
    before = os.stat(real)
    _check_regular(before, limit)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the resolved path was swapped for a symlink since
            raise UnsafeFileError("refused: the file was replaced while it was read") from exc
        raise
    with os.fdopen(fd, "rb", buffering=0) as handle:
        after = os.fstat(handle.fileno())
        if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
            raise UnsafeFileError("refused: the file was replaced while it was read")
        _check_regular(after, limit)
        chunks: list[bytes] = []
        remaining = after.st_size + 1  # one byte more than it says: a file that reads on is refused
        while remaining > 0:
            chunk = handle.read(min(remaining, _READ_BLOCK))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    data = b"".join(chunks)
    if len(data) != after.st_size:
        raise UnsafeFileError(
            f"refused: it reads {'more' if len(data) > after.st_size else 'less'} than its size "
            f"({after.st_size} bytes): not an ordinary file, or it changed while it was read"
        )
    return data


def _check_regular(info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnsafeFileError(f"refused: not a regular file but {_file_type(info.st_mode)}")
    if info.st_size > limit:
        raise UnsafeFileError(f"refused: {info.st_size:,} bytes is more than the limit of {limit:,}")


def _file_type(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "a special file"
