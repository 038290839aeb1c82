from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from diat_studio.core.errors import ModelError
from diat_studio.core.manifest import ModelManifest
from diat_studio.core.regions import RegionKind
from diat_studio.core.registry import ModelRegistry
from tests import onnx_fixtures

T = TypeVar("T")


def test_valid_models_are_available(models_root: Path) -> None:
    registry = ModelRegistry([models_root])
    assert {entry.name for entry in registry.available()} == {"redden-mouth", "redden-face"}
    local = registry.get("redden-mouth").manifest
    assert local is not None and local.kind == "local" and local.region is RegionKind.MOUTH
    assert local.crop_size == 128 and local.enhancer is not None


def test_wrong_hash_is_unavailable_and_the_rest_keeps_working(tmp_path: Path, models_root: Path) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_root, root)
    broken = root / "redden-mouth" / "transform.onnx"
    broken.write_bytes(broken.read_bytes() + b"\0")
    registry = ModelRegistry([root])
    entry = next(e for e in registry.entries if e.name == "redden-mouth")
    assert not entry.available and "SHA-256 mismatch" in (entry.reason or "")
    assert registry.get("redden-face").available
    with pytest.raises(ModelError, match=r"unavailable: transform\.onnx: SHA-256 mismatch"):
        registry.get("redden-mouth")


def test_wrong_input_shape_is_unavailable(tmp_path: Path) -> None:
    onnx_fixtures.model_folder(tmp_path, "wide-input", channels=4)
    onnx_fixtures.model_folder(tmp_path, "wrong-size", size=64)
    registry = ModelRegistry([tmp_path])
    reasons = {entry.name: entry.reason for entry in registry.entries}
    assert "4 channels" in reasons["wide-input"]
    assert "64×64, expected N×3×128×128" in reasons["wrong-size"]
    assert registry.available() == []


def test_unreadable_and_incomplete_folders_are_reported(tmp_path: Path, models_root: Path) -> None:
    (tmp_path / "garbage").mkdir()
    (tmp_path / "garbage" / "manifest.json").write_text("{not json")
    missing = tmp_path / "missing-file"
    shutil.copytree(models_root / "redden-face", missing)
    (missing / "enhancer.onnx").unlink()
    not_onnx = tmp_path / "not-onnx"
    shutil.copytree(models_root / "redden-face", not_onnx)
    data = json.loads((not_onnx / "manifest.json").read_text())
    (not_onnx / "transform.onnx").write_bytes(b"this is not a protobuf")
    from diat_studio.core.registry import sha256_file

    data["name"] = "not-onnx"
    data["transform"]["sha256"] = sha256_file(not_onnx / "transform.onnx")
    (not_onnx / "manifest.json").write_text(json.dumps(data))
    bad_region = tmp_path / "bad-region"
    shutil.copytree(models_root / "redden-face", bad_region)
    data = json.loads((bad_region / "manifest.json").read_text())
    data["region"] = "ears"
    (bad_region / "manifest.json").write_text(json.dumps(data))
    registry = ModelRegistry([tmp_path])
    reasons = {entry.directory.name: entry.reason or "" for entry in registry.entries}
    assert "unreadable manifest" in reasons["garbage"]
    assert "enhancer.onnx: file not found" in reasons["missing-file"]
    assert "not a readable ONNX model" in reasons["not-onnx"]
    assert "unknown region 'ears'" in reasons["bad-region"]


def test_earlier_folder_shadows_a_later_one(tmp_path: Path, models_root: Path) -> None:
    user = tmp_path / "user"
    shutil.copytree(models_root / "redden-face", user / "redden-face")
    registry = ModelRegistry([user, models_root])
    face_entries = [e for e in registry.entries if e.name == "redden-face"]
    assert len(face_entries) == 2
    assert registry.get("redden-face").directory == user / "redden-face"
    assert "shadowed by" in (face_entries[1].reason or "")


def test_missing_folders_and_unknown_names(tmp_path: Path) -> None:
    registry = ModelRegistry([tmp_path / "nowhere"])
    assert registry.entries == []
    with pytest.raises(ModelError, match="no model named 'x' \\(available: none installed\\)"):
        registry.get("x")


def test_default_registry_scans_the_user_folder(isolated_user_dirs: Path, models_root: Path) -> None:
    shutil.copytree(models_root / "redden-mouth", isolated_user_dirs / "diat-studio" / "models" / "mine")
    registry = ModelRegistry.default()
    assert registry.get("redden-mouth").directory.name == "mine"


def test_manifest_round_trip(models_root: Path) -> None:
    manifest = ModelManifest.load(models_root / "redden-mouth")
    assert ModelManifest.from_dict(manifest.to_dict()) == manifest


def test_visible_leaves_out_experimental_models_unless_asked(
    tmp_path: Path, models_root: Path, experimental_root: Path
) -> None:
    broken = tmp_path / "broken" / "broken-eyes"
    shutil.copytree(experimental_root / "redden-eyes", broken)
    data = json.loads((broken / "manifest.json").read_text())
    (broken / "manifest.json").write_text(json.dumps({**data, "name": "broken-eyes"}))
    (broken / "enhancer.onnx").unlink()
    registry = ModelRegistry([models_root, experimental_root, tmp_path / "broken"])

    eyes = registry.get("redden-eyes")  # usable: experimental models stay installed
    assert eyes.available and eyes.experimental and eyes.label == "Redden eyes (experimental)"
    assert not registry.get("redden-mouth").experimental
    assert registry.get("redden-mouth").label == "Redden mouth"

    def names(entries: list) -> set[str]:
        return {entry.name for entry in entries}

    assert names(registry.available()) == {"redden-mouth", "redden-face", "redden-eyes"}
    assert names(registry.visible()) == {"redden-mouth", "redden-face"}
    assert names(registry.visible(True)) == {"redden-mouth", "redden-face", "redden-eyes"}
    # unusable ones are only listed when asked for, and an experimental one only with experimental models
    assert names(registry.visible(include_unavailable=True)) == {"redden-mouth", "redden-face"}
    assert names(registry.visible(True, include_unavailable=True)) == {
        "redden-mouth",
        "redden-face",
        "redden-eyes",
        "broken-eyes",
    }
    assert names(registry.hidden_experimental()) == {"redden-eyes"}


# -- hostile model folders: never hang, never crash, never leave the model's folder -------------------

HANG_LIMIT_S = 20.0


def _within(seconds: float, call: Callable[[], T], release: Callable[[], None] = lambda: None) -> T:
    """`call()` in a daemon thread; fails (instead of hanging the suite) when it is not done in time.

    `release` is called on a timeout to unblock the thread where possible (e.g. open a FIFO's write end).
    """
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        release()
        pytest.fail(f"still running after {seconds:.0f} s: it hangs")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


def _release_fifo(path: Path) -> Callable[[], None]:
    def release() -> None:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a blocked reader then sees end of file

    return release


def _scan(roots: list[Path], release: Callable[[], None] = lambda: None) -> ModelRegistry:
    return _within(HANG_LIMIT_S, lambda: ModelRegistry(roots), release)


def _reasons(registry: ModelRegistry) -> dict[str, str]:
    return {entry.directory.name: entry.reason or "" for entry in registry.entries}


def _with_file(models_root: Path, root: Path, name: str, transform: str) -> Path:
    """A copy of redden-face called `name` whose manifest's transform.file is `transform`."""
    folder = root / name
    shutil.copytree(models_root / "redden-face", folder)
    data = json.loads((folder / "manifest.json").read_text())
    data["name"] = name
    data["transform"]["file"] = transform
    (folder / "manifest.json").write_text(json.dumps(data))
    return folder


def test_a_fifo_in_place_of_manifest_json_is_reported_without_blocking(
    tmp_path: Path, models_root: Path
) -> None:
    shutil.copytree(models_root / "redden-mouth", tmp_path / "good")
    (tmp_path / "fifo").mkdir()
    fifo = tmp_path / "fifo" / "manifest.json"
    os.mkfifo(fifo)
    registry = _scan([tmp_path], _release_fifo(fifo))
    reasons = _reasons(registry)
    assert "not a regular file but a FIFO" in reasons["fifo"]
    assert registry.get("redden-mouth").available  # one bad model never affects the others


def test_a_fifo_in_place_of_a_model_file_is_reported_without_blocking(
    tmp_path: Path, models_root: Path
) -> None:
    folder = _with_file(models_root, tmp_path, "fifo-file", "pipe.onnx")
    os.mkfifo(folder / "pipe.onnx")
    registry = _scan([tmp_path, models_root], _release_fifo(folder / "pipe.onnx"))
    assert "pipe.onnx: refused: not a regular file but a FIFO" in _reasons(registry)["fifo-file"]
    assert {entry.name for entry in registry.available()} == {"redden-mouth", "redden-face"}


@pytest.mark.parametrize(
    ("transform", "link", "expected"),
    [
        ("/proc/self/pagemap", None, "transform.file must be a path inside the model's folder"),
        ("pagemap.onnx", "/proc/self/pagemap", "pagemap.onnx: refused: it leads outside the model's folder"),
        ("zero.onnx", "/dev/zero", "zero.onnx: refused: it leads outside the model's folder"),
        ("../redden-face/transform.onnx", None, "transform.file must be a path inside the model's folder"),
        ("shared.onnx", "../redden-face/transform.onnx", "shared.onnx: refused: it leads outside"),
        ("loop.onnx", "loop.onnx", "loop.onnx: cannot read (Too many levels of symbolic links)"),
    ],
    ids=["pagemap", "symlink-pagemap", "symlink-device", "dot-dot", "symlink-sibling", "symlink-loop"],
)
def test_a_model_file_that_leads_outside_its_folder_is_refused(
    tmp_path: Path, models_root: Path, transform: str, link: str | None, expected: str
) -> None:
    root = tmp_path / "models"
    shutil.copytree(models_root, root)
    folder = _with_file(models_root, root, "hostile", transform)
    if link is not None:
        os.symlink(link, folder / transform)
    registry = _scan([root])
    reason = _reasons(registry)["hostile"]
    assert expected in reason, reason
    assert {entry.name for entry in registry.available()} == {"redden-mouth", "redden-face"}


def test_a_device_file_inside_the_folder_is_refused(tmp_path: Path, models_root: Path) -> None:
    folder = _with_file(models_root, tmp_path, "device", "zero.onnx")
    try:
        os.mknod(folder / "zero.onnx", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # /dev/zero's numbers
    except (PermissionError, AttributeError):
        pytest.skip("creating a device file needs CAP_MKNOD")
    reason = _reasons(_scan([tmp_path]))["device"]
    assert "zero.onnx: refused: not a regular file but a character device" in reason


def test_a_symlink_inside_the_folder_is_followed(tmp_path: Path, models_root: Path) -> None:
    folder = _with_file(models_root, tmp_path, "linked", "current.onnx")
    os.symlink("transform.onnx", folder / "current.onnx")
    assert _scan([tmp_path]).get("linked").available


def test_oversized_files_are_refused_before_they_are_read(
    tmp_path: Path, models_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from diat_studio.core import manifest as manifest_module
    from diat_studio.core import registry as registry_module

    big = tmp_path / "big-manifest"
    shutil.copytree(models_root / "redden-face", big)
    text = (big / "manifest.json").read_text()
    (big / "manifest.json").write_text(text[:-2] + " " * (manifest_module.MAX_MANIFEST_BYTES + 1) + "}\n")
    heavy = _with_file(models_root, tmp_path, "heavy", "transform.onnx")
    monkeypatch.setattr(registry_module, "MAX_NETWORK_BYTES", (heavy / "transform.onnx").stat().st_size - 1)
    reasons = _reasons(_scan([tmp_path]))
    assert "refused:" in reasons["big-manifest"] and "more than the limit" in reasons["big-manifest"]
    assert reasons["heavy"].startswith("transform.onnx: refused:")
    assert "more than the limit" in reasons["heavy"]


def test_a_deeply_nested_manifest_is_a_clear_error(tmp_path: Path, models_root: Path) -> None:
    for name, text in (("brackets", "[" * 100_000), ("objects", '{"a":' * 100_000 + "1" + "}" * 100_000)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manifest.json").write_text(text)
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "manifest.json").write_text('{"format_version": ' + "9" * 100_000 + "}")
    shutil.copytree(models_root / "redden-mouth", tmp_path / "good")
    registry = _scan([tmp_path])
    reasons = _reasons(registry)
    assert "nested more than" in reasons["brackets"] and "nested more than" in reasons["objects"]
    assert "unreadable manifest" in reasons["digits"]
    assert registry.get("redden-mouth").available


def _lock(monkeypatch: pytest.MonkeyPatch, locked: Path) -> None:
    """Make `locked` behave like a folder with mode 000 for a process that is not root: its own entry can
    be stat'ed, but it cannot be listed, and nothing below it can be reached.

    Tests run as root here, where chmod 000 would change nothing, so the OS calls are intercepted instead.
    """
    base = os.path.abspath(locked)

    def below(path: object) -> bool:
        if isinstance(path, int):
            return False
        name = os.path.abspath(os.fsdecode(path))  # type: ignore[arg-type]
        return name.startswith(base + os.sep)

    def denied(path: object) -> PermissionError:
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fsdecode(path))  # type: ignore[arg-type]

    def guard(function: Callable[..., object], itself: bool) -> Callable[..., object]:
        def guarded(path: object = ".", *args: object, **kwargs: object) -> object:
            if below(path) or (itself and os.path.abspath(os.fsdecode(path)) == base):  # type: ignore[arg-type]
                raise denied(path)
            return function(path, *args, **kwargs)

        return guarded

    for name in ("stat", "lstat", "scandir", "listdir", "open"):
        monkeypatch.setattr(os, name, guard(getattr(os, name), itself=name not in ("stat", "lstat")))


@pytest.mark.parametrize("locked", ["diat-studio", "diat-studio/models"], ids=["data", "models"])
def test_an_unreadable_user_models_folder_does_not_crash(
    isolated_user_dirs: Path, models_root: Path, monkeypatch: pytest.MonkeyPatch, locked: str
) -> None:
    user_models = isolated_user_dirs / "diat-studio" / "models"
    shutil.copytree(models_root / "redden-mouth", user_models / "mine")
    real_chmod = os.geteuid() != 0  # a real chmod 000 works for everyone but root
    if real_chmod:
        (isolated_user_dirs / locked).chmod(0)
    else:
        _lock(monkeypatch, isolated_user_dirs / locked)
    try:
        registry = _within(HANG_LIMIT_S, lambda: ModelRegistry.default([models_root]))
    finally:
        if real_chmod:
            (isolated_user_dirs / locked).chmod(0o755)
    assert {"redden-mouth", "redden-face"} <= {entry.name for entry in registry.available()}
    assert registry.get("redden-mouth").directory == models_root / "redden-mouth"
    (problem,) = registry.problems
    assert problem.startswith(f"{user_models}: cannot read the folder") and "Permission denied" in problem


def test_an_unreadable_model_folder_is_reported_and_the_rest_keeps_working(
    tmp_path: Path, models_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(models_root, tmp_path, dirs_exist_ok=True)
    shutil.copytree(models_root / "redden-face", tmp_path / "locked")
    _lock(monkeypatch, tmp_path / "locked")
    registry = _scan([tmp_path])
    reason = _reasons(registry)["locked"]
    assert reason.startswith("cannot read") and "Permission denied" in reason
    assert {entry.name for entry in registry.available()} == {"redden-mouth", "redden-face"}


def test_models_folders_that_are_not_folders_are_skipped(tmp_path: Path, models_root: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    os.symlink("loop", tmp_path / "loop")
    os.symlink("nowhere", tmp_path / "dangling")
    registry = _scan([tmp_path / "a-file", tmp_path / "loop", tmp_path / "dangling", models_root])
    assert {entry.name for entry in registry.available()} == {"redden-mouth", "redden-face"}
    assert len(registry.problems) == 3 and all("cannot read the folder" in p for p in registry.problems)


def test_models_and_batch_do_not_hang_on_hostile_model_folders(
    tmp_path: Path, models_root: Path, astronaut
) -> None:
    """The real commands in a child process, with a FIFO manifest, a pagemap model file and a nested
    manifest in the models folder: both finish, and use the good model."""
    from PIL import Image

    root = tmp_path / "models"
    shutil.copytree(models_root, root)
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / "manifest.json")
    os.symlink(
        "/proc/self/pagemap", _with_file(models_root, root, "pagemap", "pagemap.onnx") / "pagemap.onnx"
    )
    (root / "nested").mkdir()
    (root / "nested" / "manifest.json").write_text("[" * 100_000)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(astronaut).save(photos / "a.jpg")
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "xdg"), "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "diat_studio.cli"]
    try:
        listed = subprocess.run(
            [*cli, "models", "--models-dir", str(root)], capture_output=True, text=True, env=env, timeout=120
        )
        assert listed.returncode == 0, listed.stderr
        assert "not a regular file but a FIFO" in listed.stdout
        assert "leads outside the model's folder" in listed.stdout and "nested more than" in listed.stdout
        batch = subprocess.run(
            [
                *cli,
                "batch",
                str(photos),
                str(tmp_path / "out"),
                "--edit",
                "redden-face",
                "--models-dir",
                str(root),
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=180,
        )
        assert batch.returncode == 0, batch.stderr
        assert "1 done" in batch.stdout
    except subprocess.TimeoutExpired:
        _release_fifo(root / "fifo" / "manifest.json")()
        pytest.fail("a command hangs on a hostile model folder")
