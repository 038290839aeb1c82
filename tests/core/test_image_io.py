from __future__ import annotations

import io
import os
import struct
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, PngImagePlugin

from diat_studio.core.errors import ImageReadError, ImageTooLargeError, ImageWriteError
from diat_studio.core.image_io import Photo, load_photo, save_photo
from tests.core.tmpfs import small_tmpfs


def png_claiming_size(path: Path, width: int, height: int) -> Path:
    """A small PNG file whose header claims width×height (a decompression bomb's calling card)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )
    return path


@pytest.fixture()
def gradient() -> np.ndarray:
    y, x = np.mgrid[0:60, 0:80]
    return np.stack([x * 3, y * 4, (x + y) * 1.5], axis=2).astype(np.uint8)


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".tiff", ".bmp"])
def test_round_trip_in_every_format(tmp_path: Path, gradient: np.ndarray, extension: str) -> None:
    path = save_photo(Photo(gradient), tmp_path / f"out{extension}")
    photo = load_photo(path)
    assert photo.pixels.shape == gradient.shape and photo.pixels.dtype == np.uint8
    error = np.abs(photo.pixels.astype(int) - gradient)
    if extension in (".jpg", ".webp"):
        assert error.mean() < 3.0
    else:
        assert error.max() == 0
    assert (
        photo.format
        == {".jpg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".tiff": "TIFF", ".bmp": "BMP"}[extension]
    )


def test_exif_orientation_is_applied_and_reset(tmp_path: Path, gradient: np.ndarray) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "TestCam"
    source = tmp_path / "rotated.jpg"
    Image.fromarray(gradient).save(source, exif=exif.tobytes(), quality=98)
    photo = load_photo(source)
    assert photo.pixels.shape == (80, 60, 3)  # upright: width and height swapped
    # the top-left of the upright image is the source's bottom-left
    stored = np.asarray(Image.open(source))
    assert np.abs(photo.pixels[0, 0].astype(int) - stored[-1, 0]).max() < 10
    saved = save_photo(photo, tmp_path / "saved.jpg")
    with Image.open(saved) as reopened:
        kept = reopened.getexif()
        assert kept.get(0x0112) == 1
        assert kept.get(0x010F) == "TestCam"
        assert reopened.size == (60, 80)


def test_rgba_alpha_is_kept(tmp_path: Path, gradient: np.ndarray) -> None:
    alpha = np.tile(np.linspace(0, 255, 80, dtype=np.uint8), (60, 1))
    source = tmp_path / "alpha.png"
    Image.fromarray(np.dstack([gradient, alpha]), "RGBA").save(source)
    photo = load_photo(source)
    assert photo.pixels.shape == (60, 80, 3)
    assert np.array_equal(photo.alpha, alpha)
    saved = save_photo(photo, tmp_path / "alpha-out.png")
    with Image.open(saved) as reopened:
        assert reopened.mode == "RGBA"
        assert np.array_equal(np.asarray(reopened)[..., 3], alpha)


def test_sixteen_bit_greyscale_becomes_8_bit_rgb(tmp_path: Path) -> None:
    values = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    source = tmp_path / "deep.png"
    Image.fromarray(values).save(source)
    assert Image.open(source).mode.startswith("I")
    photo = load_photo(source)
    assert photo.pixels.dtype == np.uint8 and photo.pixels.shape == (16, 64, 3)
    assert photo.pixels[0, 0, 0] == 0 and photo.pixels[0, -1, 0] == 255
    assert np.all(np.diff(photo.pixels[0, :, 0].astype(int)) >= 0)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    source = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(source)  # pure red ink
    photo = load_photo(source)
    assert photo.source_mode == "CMYK"
    red, green, blue = photo.pixels[15, 20].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_palette_and_greyscale(tmp_path: Path, gradient: np.ndarray) -> None:
    Image.fromarray(gradient).convert("P").save(tmp_path / "p.png")
    Image.fromarray(gradient).convert("L").save(tmp_path / "l.png")
    assert load_photo(tmp_path / "p.png").pixels.shape == (60, 80, 3)
    grey = load_photo(tmp_path / "l.png").pixels
    assert np.array_equal(grey[..., 0], grey[..., 2])


def test_icc_profile_is_kept(tmp_path: Path, gradient: np.ndarray) -> None:
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = tmp_path / "icc.jpg"
    Image.fromarray(gradient).save(source, icc_profile=icc)
    photo = load_photo(source)
    assert photo.icc_profile == icc
    with Image.open(save_photo(photo, tmp_path / "icc-out.png")) as reopened:
        assert reopened.info.get("icc_profile") == icc


def test_decompression_bomb_is_refused_before_decoding(tmp_path: Path) -> None:
    bomb = png_claiming_size(tmp_path / "bomb.png", 50_000, 50_000)
    with pytest.raises(ImageTooLargeError, match="limit"):
        load_photo(bomb)
    small_limit = png_claiming_size(tmp_path / "medium.png", 3000, 3000)
    with pytest.raises(ImageTooLargeError, match="9 MP"):
        load_photo(small_limit, max_pixels=4_000_000)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "empty file"), (b"hello, I am text", "not a recognised image"), (None, "not found")],
)
def test_unreadable_inputs_have_specific_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=message):
        load_photo(path)


def test_truncated_jpeg(tmp_path: Path, gradient: np.ndarray) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.repeat(np.repeat(gradient, 8, 0), 8, 1)).save(buffer, "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 3])
    with pytest.raises(ImageReadError, match="truncated or corrupt"):
        load_photo(path)


def test_save_never_overwrites_the_input(tmp_path: Path, gradient: np.ndarray) -> None:
    source = save_photo(Photo(gradient), tmp_path / "in.png")
    before = source.read_bytes()
    photo = load_photo(source)
    with pytest.raises(ImageWriteError, match="overwrite the input"):
        save_photo(photo.with_pixels(255 - photo.pixels), source)
    other = save_photo(Photo(gradient), tmp_path / "other.png")
    alias = tmp_path / "alias.png"
    alias.symlink_to(other)
    with pytest.raises(ImageWriteError, match="overwrite the input"):
        save_photo(photo, alias, protect=[other])
    assert source.read_bytes() == before


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path, gradient: np.ndarray) -> None:
    target = tmp_path / "out.jpg"
    target.write_bytes(b"previous version")
    save_photo(Photo(gradient), target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jpg"]
    assert load_photo(target).pixels.shape == gradient.shape
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # not the temporary file's private mode


def test_failed_save_keeps_the_previous_file(tmp_path: Path, gradient: np.ndarray, monkeypatch) -> None:
    target = tmp_path / "out.png"
    target.write_bytes(b"previous version")

    def broken_replace(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(ImageWriteError, match="No space left"):
        save_photo(Photo(gradient), target)
    assert target.read_bytes() == b"previous version"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]


def test_save_keeps_input_format_unless_asked(tmp_path: Path, gradient: np.ndarray) -> None:
    source = save_photo(Photo(gradient), tmp_path / "in.webp")
    photo = load_photo(source)
    no_extension = save_photo(photo, tmp_path / "out")
    assert Image.open(no_extension).format == "WEBP"
    forced = save_photo(photo, tmp_path / "forced.img", format="PNG")
    assert Image.open(forced).format == "PNG"
    with pytest.raises(ImageWriteError, match="cannot write GIF"):
        save_photo(photo, tmp_path / "x.gif", format="GIF")


# -- issue 12: a full disk, long names, special files, every decoder failure, frames ----------------------


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".tiff", ".bmp"])
def test_a_full_disk_fails_the_save_and_leaves_the_previous_file(tmp_path: Path, extension: str) -> None:
    noise = np.random.default_rng(5).integers(0, 255, (700, 700, 3), dtype=np.uint8)  # > 300 kB in any format
    with small_tmpfs(tmp_path / "disk", "64k") as disk:
        target = disk / f"out{extension}"
        target.write_bytes(b"previous version")
        with pytest.raises(ImageWriteError, match="No space left on device"):
            save_photo(Photo(noise), target)
        assert target.read_bytes() == b"previous version"  # not truncated, not replaced by a partial file
        assert sorted(p.name for p in disk.iterdir()) == [target.name]  # no temporary file left


def test_a_noisy_jpeg_at_high_quality_is_encoded_in_memory(tmp_path: Path) -> None:
    # Pillow's in-memory buffer for an optimised JPEG (2 bytes a pixel) is too small for noise at q95 4:4:4.
    noise = np.random.default_rng(5).integers(0, 255, (700, 700, 3), dtype=np.uint8)
    saved = save_photo(Photo(noise), tmp_path / "noise.jpg", quality=98)
    assert saved.stat().st_size > 2 * 700 * 700
    assert np.abs(load_photo(saved).pixels.astype(int) - noise).mean() < 8


@pytest.mark.parametrize("length", [241, 255])
def test_names_up_to_255_bytes_can_be_saved(tmp_path: Path, gradient: np.ndarray, length: int) -> None:
    name = "é" * ((length - 5) // 2) + "x" * ((length - 5) % 2) + ".tiff"
    assert len(os.fsencode(name)) == length
    saved = save_photo(Photo(gradient), tmp_path / name)
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert np.array_equal(load_photo(saved).pixels, gradient)


def load_in_a_thread(path: Path) -> BaseException | None:
    """load_photo in a thread: a read that blocks (a FIFO) fails the test instead of hanging it."""
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            load_photo(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        with open(os.open(path, os.O_WRONLY | os.O_NONBLOCK), "wb"):
            pass  # release the blocked reader
        pytest.fail(f"load_photo({path.name}) blocked")
    return outcome[0]


def test_fifos_and_devices_are_refused_without_being_read(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "zeros.png").symlink_to("/dev/zero")
    (tmp_path / "loop.jpg").symlink_to("loop.jpg")
    pipe = load_in_a_thread(tmp_path / "pipe.jpg")
    assert isinstance(pipe, ImageReadError) and "not an image file but a named pipe (FIFO)" in str(pipe)
    with pytest.raises(ImageReadError, match="not an image file but a character device"):
        load_photo(tmp_path / "zeros.png")
    with pytest.raises(ImageReadError, match="Too many levels of symbolic links"):
        load_photo(tmp_path / "loop.jpg")


def png_with_text_bomb(path: Path) -> Path:
    """A tiny PNG whose zTXt chunk inflates past Pillow's text limit (Pillow raises ValueError)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0)
    text = b"comment\x00\x00" + zlib.compress(b"a" * (PngImagePlugin.MAX_TEXT_CHUNK + 1))
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * 12 for _ in range(4)))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"zTXt", text)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
    )
    return path


def tiff_with_invalid_width(path: Path) -> Path:
    """An 8×8 TIFF whose ImageWidth tag is the RATIONAL 0/0 (Pillow raises ValueError: Invalid dimensions)."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buffer, "TIFF")
    data = bytearray(buffer.getvalue())
    offset = struct.unpack("<I", data[4:8])[0]
    for index in range(struct.unpack("<H", data[offset : offset + 2])[0]):
        entry = offset + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 256:  # ImageWidth
            data[entry + 2 : entry + 4] = struct.pack("<H", 5)  # RATIONAL ...
            data[entry + 8 : entry + 12] = struct.pack("<I", 0)  # ... at offset 0
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    "make", [png_with_text_bomb, tiff_with_invalid_width], ids=["text-bomb", "tiff-dims"]
)
def test_every_decoder_failure_is_an_image_read_error(tmp_path: Path, make) -> None:
    path = make(tmp_path / ("bad.png" if make is png_with_text_bomb else "bad.tiff"))
    with pytest.raises(ImageReadError, match=r"corrupt or unsupported image data \(ValueError: "):
        load_photo(path)


def test_files_with_several_frames_say_so(tmp_path: Path, gradient: np.ndarray) -> None:
    frames = [Image.fromarray(gradient), Image.fromarray(255 - gradient), Image.fromarray(gradient[::-1])]
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], duration=80)
    frames[0].save(tmp_path / "pages.tiff", save_all=True, append_images=frames[1:2])
    frames[0].save(tmp_path / "one.png")
    assert load_photo(tmp_path / "anim.webp").frames == 3
    assert load_photo(tmp_path / "pages.tiff").frames == 2
    assert load_photo(tmp_path / "one.png").frames == 1
    assert np.array_equal(load_photo(tmp_path / "pages.tiff").pixels, gradient)  # the first page
