"""Outputs written whole or not at all, inputs opened only when they are regular files, one batch per folder.

Why each piece exists:

- Pillow's JPEG encoder writes straight to the file descriptor and ignores a short write: on a full disk the
  output was silently truncated and counted as done. Callers therefore encode to memory first, and
  `atomic_write_bytes` writes with a checked loop, fsyncs, verifies the size, and only then renames.
- The temporary name is short and fixed (`.diat-XXXXXXXX.part`, 19 bytes): a name derived from the target
  (its name plus 15 bytes) failed for targets of 241-255 bytes, NAME_MAX being 255.
- Opening a FIFO for reading blocks until a writer appears, and a device can be endless (or, like a
  watchdog, act on open): `open_regular` looks at the type before opening, opens without blocking, and
  checks the type again on the open descriptor.
- `FolderLock` is an flock on a file in the folder: the kernel releases it when the process dies, so a
  killed batch never leaves a stale lock behind.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from diat_studio.core.errors import ImageWriteError

TEMP_PREFIX = ".diat-"
TEMP_SUFFIX = ".part"
LOCK_NAME = ".diat-studio.lock"

#: Our temporary files: `.diat-` + mkstemp's 8 random characters + `.part`; earlier versions named them
#: `.<target name>.XXXXXXXX.part`, recognised only when the target is an image or a report.
_TEMP_NAME = re.compile(r"^\.diat-[a-z0-9_]{8}\.part$")
_OLD_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.[a-z0-9_]{8}\.part$")
_OLD_TEMP_TARGETS = re.compile(
    r"(?i).+\.(?:jpe?g|jpe|png|webp|tiff?|bmp)$|^diat-studio-report\.(?:json|csv)$"
)

_WRITE_CHUNK = 1 << 20
_UMASK = os.umask(0)
os.umask(_UMASK)

_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}


class NotRegularFileError(OSError):
    """The path exists but is not a regular file (a folder, FIFO, device, socket)."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        self.kind = file_kind(mode)
        self.is_folder = stat.S_ISDIR(mode)
        super().__init__(errno.EISDIR if self.is_folder else errno.EINVAL, f"not a regular file: {self.kind}")
        self.filename = os.fspath(path)


class FileTooLargeError(OSError):
    """The file is larger than the caller is willing to read."""


class FolderLockedError(OSError):
    """Another process holds the folder's lock."""


def file_kind(mode: int) -> str:
    """'a named pipe (FIFO)', 'a folder', ... for a stat mode; 'a regular file' for regular files."""
    if stat.S_ISREG(mode):
        return "a regular file"
    return _KINDS.get(stat.S_IFMT(mode), "a special file")


def utf8_text(text: str) -> str:
    """`text` as valid UTF-8, for reports: the raw bytes of a name that is not UTF-8 become `\\xNN`.

    Such names arrive from the file system as surrogate escapes (PEP 383), which cannot be encoded as
    UTF-8; everything else is returned unchanged.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def open_regular(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> BinaryIO:
    """Open a regular file for reading, never anything else (FIFOs would block, devices never end).

    Raises FileNotFoundError (a dangling link included), NotRegularFileError, FileTooLargeError, or the
    OSError of the failure (ELOOP for a link loop, EACCES, ...).
    """
    before = os.stat(path)
    if not stat.S_ISREG(before.st_mode):
        raise NotRegularFileError(path, before.st_mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        after = os.fstat(fd)
        if not stat.S_ISREG(after.st_mode):  # swapped between the stat and the open
            raise NotRegularFileError(path, after.st_mode)
        if max_bytes is not None and after.st_size > max_bytes:
            raise FileTooLargeError(errno.EFBIG, f"larger than {max_bytes} bytes", os.fspath(path))
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` whole or not at all; raises ImageWriteError naming the problem.

    The bytes go to a temporary file beside `path` with checked writes, are fsynced and their size
    verified, and only then renamed over `path`. On any failure the temporary file is removed and an
    existing `path` is left as it was.
    """
    path = Path(path)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise ImageWriteError(f"{path}: cannot write to {path.parent} ({exc.strerror or exc})") from exc
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
            written = os.fstat(fd).st_size
            if written != len(data):
                raise OSError(errno.EIO, f"only {written} of {len(data)} bytes reached the disk")
            os.fchmod(fd, 0o666 & ~_UMASK)
        finally:
            os.close(fd)
        os.replace(temp_name, path)
    except OSError as exc:
        _remove_quietly(temp_name)
        raise ImageWriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        _remove_quietly(temp_name)
        raise
    _fsync_folder(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    """os.write until every byte is written; a write that makes no progress is a full disk."""
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        written = os.write(fd, view[offset : offset + _WRITE_CHUNK])
        if written <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        offset += written


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (best effort: not every file system can fsync a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove_quietly(name: str | os.PathLike[str]) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name)


def is_temporary_name(name: str) -> bool:
    """True for the names of our own temporary files (left behind only by a killed process)."""
    if _TEMP_NAME.match(name):
        return True
    old = _OLD_TEMP_NAME.match(name)
    return old is not None and _OLD_TEMP_TARGETS.match(old.group("target")) is not None


def remove_stale_temporaries(folder: Path) -> int:
    """Remove our temporary files under `folder` (links are not followed); returns how many.

    Call it only while holding the folder's `FolderLock`: a running writer's temporary files look the same.
    """
    removed = 0
    for directory in _real_folders(folder):
        try:
            with os.scandir(directory) as entries:
                stale = [e.path for e in entries if is_temporary_name(e.name) and _is_plain_file(e)]
        except OSError:
            continue
        for name in stale:
            try:
                os.unlink(name)
                removed += 1
            except OSError:
                pass
    return removed


def _is_plain_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def _real_folders(root: Path) -> Iterator[str]:
    """`root` and every folder below it, without following links; each folder once (bind mounts)."""
    seen: set[tuple[int, int]] = set()
    stack = [os.fspath(root)]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder, follow_symlinks=False)
        except OSError:
            continue
        if (info.st_dev, info.st_ino) in seen or not stat.S_ISDIR(info.st_mode):
            continue
        seen.add((info.st_dev, info.st_ino))
        yield folder
        try:
            with os.scandir(folder) as entries:
                stack.extend(e.path for e in entries if e.is_dir(follow_symlinks=False))
        except OSError:
            continue


class FolderLock:
    """An exclusive, advisory lock on a folder, held through an flock on `LOCK_NAME` inside it.

    The kernel drops the lock when the holder dies, however it dies. `release()` removes the lock file.
    """

    def __init__(self, folder: Path) -> None:
        self.path = Path(folder) / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise FolderLockedError (held elsewhere) or OSError (cannot lock here)."""
        if self._fd is not None:
            return
        for _ in range(20):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderLockedError(errno.EAGAIN, "locked by another process", str(self.path)) from None
            except BaseException:
                os.close(fd)
                raise
            # The previous holder unlinks the file before unlocking: if that happened between our open and
            # our flock, we hold a lock on a file nobody else will open. Only the file at the path counts.
            try:
                current = os.stat(self.path, follow_symlinks=False)
                mine = os.fstat(fd)
            except OSError:
                os.close(fd)
                continue
            if (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino):
                self._fd = fd
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, 0)
                    os.write(fd, f"{os.getpid()}\n".encode())
                return
            os.close(fd)
        raise OSError(errno.EAGAIN, "the lock file keeps changing", str(self.path))

    def release(self) -> None:
        if self._fd is None:
            return
        _remove_quietly(self.path)  # unlink first, then unlock: see acquire()
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()
