"""diat_studio.core must stay free of Qt and torch, so the trainer-free, GUI-free paths stay light."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import diat_studio.core

FORBIDDEN = ("PySide6", "shiboken6", "torch", "qdarkstyle", "qtpy", "diat_studio.gui", "trainer")


def core_modules() -> list[str]:
    return sorted(f"diat_studio.core.{info.name}" for info in pkgutil.iter_modules(diat_studio.core.__path__))


def test_core_has_the_expected_modules() -> None:
    names = core_modules()
    for module in (
        "image_io",
        "faces",
        "alignment",
        "regions",
        "manifest",
        "registry",
        "inference",
        "pipeline",
        "batch",
    ):
        assert f"diat_studio.core.{module}" in names


def test_importing_core_and_cli_loads_no_qt_or_torch() -> None:
    imports = "; ".join(f"import {name}" for name in [*core_modules(), "diat_studio.cli"])
    check = (
        f"{imports}; import sys; "
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m in {FORBIDDEN!r}); "
        "print(','.join(bad)); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"core imported forbidden modules: {result.stdout} {result.stderr}"


def test_headless_commands_run_without_qt() -> None:
    """`diat-studio models` must not pull in Qt (it runs on servers without a display)."""
    check = (
        "import sys; from diat_studio.cli import main; code = main(['models']); "
        "sys.exit(3 if 'PySide6' in sys.modules else code)"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_import_linter_contracts_hold() -> None:
    """The static check (pyproject.toml [tool.importlinter]) also sees imports inside functions."""
    import shutil

    from tests.conftest import REPO_ROOT

    executable = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert executable, "import-linter is a dev dependency: `make test` installs it"
    result = subprocess.run([executable], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
