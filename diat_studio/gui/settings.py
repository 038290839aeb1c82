"""Persistent settings (QSettings): device, theme, detector, model folders, experimental models, recents,
the folders the file dialogs and the batch dialog last used."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from diat_studio.core.inference import Device

MAX_RECENT = 10


class AppSettings:
    """Typed access to the application's QSettings."""

    def __init__(self, store: QSettings | None = None) -> None:
        self.store = store or QSettings("DIAT Studio", "DIAT Studio")

    def _get(self, key: str, default: object) -> object:
        value = self.store.value(key, default)
        return default if value is None else value

    @property
    def device(self) -> Device:
        try:
            return Device(str(self._get("device", Device.AUTO.value)))
        except ValueError:
            return Device.AUTO

    @device.setter
    def device(self, value: Device) -> None:
        self.store.setValue("device", Device(value).value)

    @property
    def theme(self) -> str:
        value = str(self._get("theme", "dark"))
        return value if value in ("dark", "light") else "dark"

    @theme.setter
    def theme(self, value: str) -> None:
        self.store.setValue("theme", value)

    @property
    def detector(self) -> str:
        value = str(self._get("detector", "hog"))
        return value if value in ("hog", "cnn") else "hog"

    @detector.setter
    def detector(self, value: str) -> None:
        self.store.setValue("detector", value)

    @property
    def jpeg_quality(self) -> int:
        try:
            value = int(self._get("jpeg_quality", 95))  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return 95
        return min(max(value, 1), 100)

    @jpeg_quality.setter
    def jpeg_quality(self, value: int) -> None:
        self.store.setValue("jpeg_quality", int(value))

    @property
    def model_folders(self) -> list[Path]:
        return [Path(p) for p in self._list("model_folders")]

    @model_folders.setter
    def model_folders(self, folders: list[Path]) -> None:
        self.store.setValue("model_folders", [str(p) for p in folders])

    @property
    def show_experimental(self) -> bool:
        """Offer experimental models (below their quality bar) in the edit list and the batch dialog."""
        return self._flag("show_experimental", False)

    @show_experimental.setter
    def show_experimental(self, value: bool) -> None:
        self.store.setValue("show_experimental", bool(value))

    @property
    def keep_detail(self) -> bool:
        """Paste edits back on the photo's own fine detail (diat_studio.core.compositing); off pastes the
        enlarged edited crop itself, for comparisons."""
        return self._flag("keep_detail", True)

    @keep_detail.setter
    def keep_detail(self, value: bool) -> None:
        self.store.setValue("keep_detail", bool(value))

    @property
    def recent_files(self) -> list[Path]:
        return [Path(p) for p in self._list("recent_files")]

    def add_recent(self, path: Path) -> None:
        path = Path(path).resolve()
        recent = [p for p in self.recent_files if p != path]
        self.store.setValue("recent_files", [str(p) for p in [path, *recent][:MAX_RECENT]])

    @property
    def last_folder(self) -> Path | None:
        """The folder a file dialog last opened or saved in."""
        value = str(self._get("dialogs/last_folder", ""))
        return Path(value) if value else None

    @last_folder.setter
    def last_folder(self, folder: Path) -> None:
        self.store.setValue("dialogs/last_folder", str(folder))

    def batch_folder(self, which: str) -> str:
        """The batch dialog's last `input` or `output` folder ("" if none)."""
        return str(self._get(f"batch/{which}", ""))

    def set_batch_folder(self, which: str, folder: str) -> None:
        self.store.setValue(f"batch/{which}", folder)

    @property
    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self.store.setValue("window/geometry", value)

    @property
    def window_state(self) -> QByteArray | None:
        value = self.store.value("window/state")
        return value if isinstance(value, QByteArray) else None

    @window_state.setter
    def window_state(self, value: QByteArray) -> None:
        self.store.setValue("window/state", value)

    def _flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if isinstance(value, str):  # INI files and some platforms give back text
            return value.strip().lower() in ("true", "1", "yes", "on")
        return bool(value)

    def _list(self, key: str) -> list[str]:
        value = self.store.value(key, [])
        if value is None:
            return []
        if isinstance(value, str):
            return [value] if value else []
        return [str(v) for v in value]
