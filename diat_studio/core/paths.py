"""Where things are: bundled resources (source checkout or frozen bundle) and per-user folders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_DIR_NAME = "diat-studio"


def resources_root() -> Path:
    """The `resources/` folder: next to the package in a source checkout, inside the bundle when frozen."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    override = os.environ.get("DIAT_STUDIO_RESOURCES")
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[2] / "resources"


def resource_path(*parts: str) -> Path:
    """One bundled resource, e.g. resource_path("sample", "astronaut.jpg")."""
    return resources_root().joinpath(*parts)


def bundled_models_dir() -> Path:
    return resource_path("models")


def user_data_dir() -> Path:
    """Per-user data folder: XDG on Linux, Application Support on macOS, %APPDATA% on Windows."""
    if sys.platform == "win32":
        base = Path(os.environ.get("APPDATA") or Path.home() / "AppData" / "Roaming")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_DIR_NAME


def user_models_dir() -> Path:
    """Where a user's own (trained or downloaded) models go; scanned after the bundled ones."""
    return user_data_dir() / "models"
