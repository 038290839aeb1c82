"""Errors a user can act on. Each carries a plain message; no traceback is shown for these."""

from __future__ import annotations


class DiatError(Exception):
    """Base class for every error that is the user's input, not a bug."""


class ImageReadError(DiatError):
    """The file could not be read as an image (missing, truncated, not an image, unsupported)."""


class ImageTooLargeError(ImageReadError):
    """The image has more pixels than the configured limit (decompression-bomb guard)."""


class ImageWriteError(DiatError):
    """The output could not be written (permissions, disk, would overwrite the input)."""


class NoFaceError(DiatError):
    """No face was found in the photo."""


class ModelError(DiatError):
    """A model is missing, invalid or cannot run."""
