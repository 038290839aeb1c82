"""Edit → Settings: execution device (and what really runs), model folders, experimental models, theme,
detector."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from diat_studio.core.inference import Device, probe_device
from diat_studio.gui.settings import AppSettings


class SettingsDialog(QDialog):
    def __init__(self, settings: AppSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.settings = settings
        self.device = QComboBox()
        for label, value in (
            ("Auto (CUDA if it works, else CPU)", Device.AUTO),
            ("CUDA", Device.CUDA),
            ("CPU", Device.CPU),
        ):
            self.device.addItem(label, value)
        self.device.setCurrentIndex([Device.AUTO, Device.CUDA, Device.CPU].index(settings.device))
        self.active = QLabel()
        self.active.setWordWrap(True)
        self.device.currentIndexChanged.connect(self._update_active)
        self.theme = QComboBox()
        self.theme.addItem("Dark", "dark")
        self.theme.addItem("Light", "light")
        self.theme.setCurrentIndex(0 if settings.theme == "dark" else 1)
        self.detector = QComboBox()
        self.detector.addItem("HOG (fast)", "hog")
        self.detector.addItem("CNN (finds more faces, slower)", "cnn")
        self.detector.setCurrentIndex(0 if settings.detector == "hog" else 1)
        self.quality = QSpinBox()
        self.quality.setRange(1, 100)
        self.quality.setValue(settings.jpeg_quality)
        self.quality.setToolTip(
            "Quality of saved JPEG and WebP files (EXIF and colour profile are always kept)"
        )
        self.folders = QListWidget()
        self.folders.addItems([str(p) for p in settings.model_folders])
        add = QPushButton("Add folder…")
        add.clicked.connect(self._add_folder)
        remove = QPushButton("Remove")
        remove.clicked.connect(self._remove_folders)
        self.experimental = QCheckBox("Show experimental models")
        self.experimental.setChecked(settings.show_experimental)
        self.experimental.setToolTip(
            "Experimental models do not pass their quality bar yet (their model cards say why). They stay\n"
            "installed; this shows them, marked (experimental), in the edit list and the batch dialog."
        )
        self.keep_detail = QCheckBox("Keep the photo's detail when pasting an edit back")
        self.keep_detail.setChecked(settings.keep_detail)
        self.keep_detail.setToolTip(
            "On: the model's change is added to the photo's own full-resolution detail (sharp at any size).\n"
            "Off: the edited face is the model's enlarged crop (soft on large faces), for comparisons."
        )
        folder_buttons = QHBoxLayout()
        folder_buttons.addWidget(add)
        folder_buttons.addWidget(remove)
        form = QFormLayout()
        form.addRow("Execution device", self.device)
        form.addRow("", self.active)
        form.addRow("Extra model folders", self.folders)
        form.addRow("", folder_buttons)
        form.addRow("", self.experimental)
        form.addRow("Paste-back", self.keep_detail)
        form.addRow("Theme", self.theme)
        form.addRow("Face detector", self.detector)
        form.addRow("JPEG / WebP quality", self.quality)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._update_active()

    def _update_active(self) -> None:
        report = probe_device(self.device.currentData())
        text = f"Active: {report.label} ({', '.join(report.active)})"
        if report.message:
            text += f"\n{report.message}"
        self.active.setText(text)

    def _remove_folders(self) -> None:
        # A method, not a lambda: a lambda holding `self`, connected to a child's signal, kept the dialog's
        # wrapper alive until Qt deleted the child at exit, and dropping it then deleted the dialog a
        # second time ("QObject: shared QObject was deleted directly", then heap corruption).
        for item in self.folders.selectedItems():
            self.folders.takeItem(self.folders.row(item))

    def _add_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add a models folder")
        if folder:
            self.folders.addItem(folder)

    def store(self) -> None:
        self.settings.device = self.device.currentData()
        self.settings.theme = self.theme.currentData()
        self.settings.detector = self.detector.currentData()
        self.settings.jpeg_quality = self.quality.value()
        self.settings.show_experimental = self.experimental.isChecked()
        self.settings.keep_detail = self.keep_detail.isChecked()
        self.settings.model_folders = [Path(self.folders.item(i).text()) for i in range(self.folders.count())]
