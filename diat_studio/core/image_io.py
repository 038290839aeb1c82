"""Reading and writing photos.

Every photo is processed as upright 8-bit RGB (`Photo.pixels`). What the file had besides that — alpha,
EXIF, an RGB ICC profile, DPI — rides along in the `Photo` and is written back on save. Loading never
modifies the file, opens only regular files, and turns every decoder failure into ImageReadError; saving
encodes in memory, then writes atomically (checked writes to a temporary file in the destination folder,
fsync, rename: a full disk is an ImageWriteError and leaves no partial file) and refuses to overwrite the
photo it was loaded from.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from diat_studio.core.atomic_files import NotRegularFileError, atomic_write_bytes, open_regular
from diat_studio.core.errors import DiatError, ImageReadError, ImageTooLargeError, ImageWriteError

__all__ = [
    "DEFAULT_JPEG_QUALITY",
    "DEFAULT_MAX_PIXELS",
    "EXTENSION_FORMATS",
    "SUPPORTED_FORMATS",
    "Photo",
    "atomic_write_bytes",
    "format_for_extension",
    "is_image_path",
    "load_photo",
    "save_photo",
]

#: Formats we read and write, by Pillow's format name.
SUPPORTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP")

#: File extensions (lower case) and the format they mean.
EXTENSION_FORMATS: dict[str, str] = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".jpe": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}

#: Default decompression-bomb guard: refuse images with more pixels than this before decoding them.
DEFAULT_MAX_PIXELS = 100_000_000

DEFAULT_JPEG_QUALITY = 95

_ALPHA_FORMATS = frozenset({"PNG", "WEBP", "TIFF"})
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class Photo:
    """An upright 8-bit RGB photo plus what its file carried besides the pixels."""

    pixels: np.ndarray
    """H×W×3 uint8, RGB, EXIF orientation already applied."""
    format: str = "PNG"
    """Pillow format name of the source file (what `save_photo` writes unless told otherwise)."""
    alpha: np.ndarray | None = None
    """H×W uint8 alpha channel of the source, re-attached on save where the format allows."""
    exif: bytes | None = None
    """EXIF block of the source with the orientation tag reset to 1 (pixels are already upright)."""
    icc_profile: bytes | None = None
    """An RGB ICC profile describing `pixels` (None means sRGB)."""
    dpi: tuple[float, float] | None = None
    source_path: Path | None = None
    source_mode: str = "RGB"
    """Pillow mode of the file before conversion (e.g. "CMYK", "I;16", "P")."""
    frames: int = 1
    """Frames or pages in the source file; only the first is in `pixels` (animated WebP/PNG, TIFF pages)."""

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    def with_pixels(self, pixels: np.ndarray) -> Photo:
        """The same photo metadata around new pixels of the same size."""
        if pixels.shape != self.pixels.shape or pixels.dtype != np.uint8:
            raise ValueError(f"expected {self.pixels.shape} uint8 pixels, got {pixels.shape} {pixels.dtype}")
        return replace(self, pixels=pixels)


def format_for_extension(path: str | os.PathLike[str]) -> str | None:
    """The image format a file name asks for, or None when the extension is not an image we handle."""
    return EXTENSION_FORMATS.get(Path(path).suffix.lower())


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return format_for_extension(path) is not None


def load_photo(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Photo:
    """Read a photo as upright 8-bit RGB.

    Raises ImageReadError (or its subclass ImageTooLargeError) with a message that names the problem, for
    every way a file can fail to decode: Pillow's plugins raise ValueError, SyntaxError, struct.error,
    EOFError, IndexError and more on hostile files. The pixel limit is checked from the header, before any
    pixel data is decoded. Only regular files are opened (a FIFO would block, a device never ends).
    Files with several frames (animated WebP/PNG, multi-page TIFF) give their first; `Photo.frames` says so.
    """
    path = Path(path)
    try:
        handle = open_regular(path)
    except FileNotFoundError as exc:
        raise ImageReadError(f"{path}: file not found") from exc
    except NotRegularFileError as exc:
        if exc.is_folder:
            raise ImageReadError(f"{path}: is a folder, not an image") from exc
        raise ImageReadError(f"{path}: not an image file but {exc.kind}") from exc
    except OSError as exc:
        raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            raise ImageReadError(f"{path}: empty file (0 bytes)")
        try:
            return _decode(handle, path, max_pixels)
        except DiatError:
            raise
        except MemoryError as exc:
            raise ImageReadError(f"{path}: not enough memory to decode this image") from exc
        except OSError as exc:
            raise ImageReadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        except Exception as exc:  # every decoder failure is the file's problem, never a crash
            raise ImageReadError(f"{path}: corrupt or unsupported image data ({_describe(exc)})") from exc


def _decode(handle: IO[bytes], path: Path, max_pixels: int) -> Photo:
    # Pillow refuses images above 2 × MAX_IMAGE_PIXELS by itself; our own limit is checked below, so
    # only raise Pillow's when the caller allows more than Pillow would.
    if Image.MAX_IMAGE_PIXELS is not None and max_pixels > Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"{path}: image is too large to open safely (over the limit of {_megapixels(max_pixels)})"
        ) from exc
    except UnidentifiedImageError as exc:
        raise ImageReadError(f"{path}: not a recognised image file") from exc

    with image:
        if image.format not in SUPPORTED_FORMATS:
            raise ImageReadError(
                f"{path}: {image.format} images are not supported (supported: {', '.join(SUPPORTED_FORMATS)})"
            )
        width, height = image.size
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"{path}: {width}×{height} pixels ({_megapixels(width * height)}) is over the limit of "
                f"{_megapixels(max_pixels)}"
            )
        if width <= 0 or height <= 0:
            raise ImageReadError(f"{path}: image has no pixels ({width}×{height})")
        frames = _frame_count(image)
        try:
            image.load()
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise ImageReadError(f"{path}: truncated or corrupt image data ({_describe(exc)})") from exc
        return replace(_photo_from_image(image, path), frames=frames)


def _frame_count(image: Image.Image) -> int:
    """Frames (animation) or pages (TIFF) in the file; 1 when the file cannot say."""
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # counting walks every TIFF page: a corrupt later page must not hide the first
        return 1


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} MP"


def _photo_from_image(image: Image.Image, path: Path | None) -> Photo:
    source_format = image.format or "PNG"
    source_mode = image.mode
    icc = image.info.get("icc_profile") or None
    dpi = image.info.get("dpi")
    upright = ImageOps.exif_transpose(image)
    # After the transpose: resetting the tag edits the image's cached EXIF, which the transpose reads.
    exif_bytes = _exif_without_orientation(image) if source_format in _EXIF_FORMATS else None
    rgb, alpha, icc = _to_rgb8(upright, icc)
    return Photo(
        pixels=rgb,
        format=source_format,
        alpha=alpha,
        exif=exif_bytes,
        icc_profile=icc,
        dpi=(float(dpi[0]), float(dpi[1])) if dpi else None,
        source_path=path,
        source_mode=source_mode,
    )


def _exif_without_orientation(image: Image.Image) -> bytes | None:
    try:
        exif = image.getexif()
    except Exception:  # a corrupt EXIF block must not make the photo unreadable
        return None
    if not exif:
        return None
    if _ORIENTATION_TAG in exif:
        exif[_ORIENTATION_TAG] = 1
    try:
        return exif.tobytes()
    except Exception:
        return None


def _icc_colour_space(icc: bytes | None) -> str | None:
    """The ICC header's data colour space signature ('RGB', 'CMYK', 'GRAY', ...)."""
    if not icc or len(icc) < 20:
        return None
    return icc[16:20].decode("ascii", errors="replace").strip()


def _to_rgb8(image: Image.Image, icc: bytes | None) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """Convert any Pillow mode to (H×W×3 uint8 RGB, optional H×W uint8 alpha, RGB ICC profile or None)."""
    mode = image.mode
    alpha: np.ndarray | None = None
    space = _icc_colour_space(icc)

    if mode == "CMYK":
        rgb_image = _cmyk_to_rgb(image, icc if space == "CMYK" else None)
        return np.asarray(rgb_image, dtype=np.uint8).copy(), None, None
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = _high_depth_to_uint8(np.asarray(image), mode)
        return np.repeat(grey[:, :, None], 3, axis=2), None, None
    if mode == "P" or mode == "PA":
        image = image.convert("RGBA" if ("transparency" in image.info or mode == "PA") else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "RGBa", "La"):
        if mode in ("RGBa", "La"):
            image = image.convert(mode.replace("a", "A"))
        alpha = np.asarray(image.getchannel("A"), dtype=np.uint8).copy()
        image = image.convert("RGB")
    elif mode != "RGB":
        image = image.convert("RGB")
    keep_icc = icc if space == "RGB" else None
    return np.asarray(image, dtype=np.uint8).copy(), alpha, keep_icc


def _cmyk_to_rgb(image: Image.Image, cmyk_icc: bytes | None) -> Image.Image:
    """CMYK to sRGB, colour-managed through the embedded profile when there is one."""
    if cmyk_icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(cmyk_icc))
            srgb = ImageCms.createProfile("sRGB")
            return ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile: fall back to the naive conversion below
    return image.convert("RGB")


def _high_depth_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    values = values.astype(np.float64)
    if mode == "F":
        scale = 255.0 if values.size and np.nanmax(values) <= 1.0 else 1.0
    elif mode.startswith("I;16") or (values.size and values.max() > 255):
        scale = 255.0 / 65535.0
    else:
        scale = 1.0
    return np.clip(np.rint(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)


def save_photo(
    photo: Photo,
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    quality: int = DEFAULT_JPEG_QUALITY,
    protect: Iterable[str | os.PathLike[str]] = (),
) -> Path:
    """Write `photo` atomically and return the path written.

    The format comes from `format`, else from the file extension, else from the photo's source format.
    EXIF (orientation already reset) and an RGB ICC profile are kept; alpha is re-attached where the
    format has it. The photo's own source file and every path in `protect` are never overwritten.
    """
    path = Path(path)
    fmt = (format or format_for_extension(path) or photo.format).upper()
    if fmt == "JPG":
        fmt = "JPEG"
    if fmt not in SUPPORTED_FORMATS:
        raise ImageWriteError(f"{path}: cannot write {fmt} (supported: {', '.join(SUPPORTED_FORMATS)})")
    if not 1 <= quality <= 100:
        raise ImageWriteError(f"JPEG/WebP quality must be 1-100, got {quality}")
    protected = [Path(p) for p in protect]
    if photo.source_path is not None:
        protected.append(photo.source_path)
    for other in protected:
        if _same_file(path, other):
            raise ImageWriteError(f"{path}: refusing to overwrite the input photo")
    if not path.parent.is_dir():
        raise ImageWriteError(f"{path.parent}: output folder does not exist")

    image = Image.fromarray(np.ascontiguousarray(photo.pixels), "RGB")
    if photo.alpha is not None and fmt in _ALPHA_FORMATS:
        image.putalpha(Image.fromarray(photo.alpha, "L"))
    options: dict[str, object] = {}
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = quality
    if fmt == "JPEG":
        options["subsampling"] = 0 if quality >= 90 else 2
        options["optimize"] = True
    if fmt == "TIFF":
        options["compression"] = "tiff_lzw"
    if photo.exif and fmt in _EXIF_FORMATS:
        options["exif"] = photo.exif
    if photo.icc_profile and fmt != "BMP":
        options["icc_profile"] = photo.icc_profile
    if photo.dpi and fmt in ("JPEG", "PNG", "TIFF"):
        options["dpi"] = photo.dpi
    _atomic_write(path, lambda handle: _encode(image, handle, fmt, options))
    return path


def _encode(image: Image.Image, handle: IO[bytes], fmt: str, options: dict[str, object]) -> None:
    try:
        image.save(handle, format=fmt, **options)
    except OSError:
        if not options.get("optimize"):
            raise
        # Into memory, an optimised JPEG must fit a buffer Pillow sizes by guess (2 bytes a pixel at
        # quality >= 95): detailed or noisy photos overflow it ("broken data stream"). Optimising only
        # shrinks the Huffman tables, so the same pixels are written without it.
        handle.seek(0)
        handle.truncate()
        image.save(handle, format=fmt, **{**options, "optimize": False})


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _atomic_write(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Encode with `write(buffer)` into memory, then write the bytes atomically with checked writes.

    Encoding to memory matters: given a real file, Pillow's JPEG encoder writes to the descriptor itself
    and ignores a short write, so a full disk gave a silently truncated photo.
    """
    buffer = io.BytesIO()
    try:
        write(buffer)
    except (OSError, ValueError) as exc:
        raise ImageWriteError(f"{path}: cannot encode the image ({_describe(exc)})") from exc
    atomic_write_bytes(path, buffer.getvalue())
