"""The Edits panel: the registry's models, strength and feather, Apply / Cancel with progress.

Experimental models are listed (marked as such) only when Settings → Show experimental models is on.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from diat_studio.core.paths import user_models_dir
from diat_studio.core.pipeline import DEFAULT_FEATHER
from diat_studio.core.registry import ModelEntry, ModelRegistry

ENTRY_ROLE = Qt.ItemDataRole.UserRole
EXPERIMENTAL_NOTE = (
    "Experimental: this edit does not pass its quality bar yet (its model card says why). Listed because "
    "Settings → Show experimental models is on."
)


def describe(entry: ModelEntry) -> tuple[str, str]:
    """(list text, tooltip) for a registry entry."""
    manifest = entry.manifest
    if manifest is None:
        return f"{entry.name}\nunavailable: {entry.reason}", str(entry.directory)
    kind = f"{manifest.kind} · {manifest.region.value if manifest.kind == 'local' else 'whole face'}"
    text = f"{manifest.label}\n{kind} · {manifest.crop_size} px"
    if not entry.available:
        text += f"\nunavailable: {entry.reason}"
    metrics = manifest.metrics
    lines = [manifest.description or manifest.name, f"folder: {entry.directory}"]
    if manifest.experimental:
        lines.insert(0, EXPERIMENTAL_NOTE)
    for key, label in (
        ("attribute_success_rate", "attribute success"),
        ("identity_kept_rate", "identity kept"),
    ):
        if key in metrics:
            lines.append(f"{label}: {100 * float(metrics[key]):.0f}%")
    if "outer_feather_change_p99" in metrics:  # what a user can see at the edge of a local edit
        edge = float(metrics["outer_feather_change_p99"])
        over = 100 * float(metrics.get("outer_feather_faces_over_8", 0))
        lines.append(
            f"change where the edit fades out: {edge:.1f} grey levels "
            f"(99th percentile; {over:.0f}% of faces over 8)"
        )
    if "psnr_outside_mask_db" in metrics:
        lines.append(f"PSNR outside the mask: {metrics['psnr_outside_mask_db']} dB")
    if manifest.licence:
        lines.append(f"licence: {manifest.licence}")
    return text, "\n".join(lines)


class EditsPanel(QWidget):
    model_changed = Signal(object)
    """The chosen model changed: a ModelEntry, or None."""
    apply_requested = Signal()
    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.models = QListWidget()
        self.models.setWordWrap(True)
        self.models.currentItemChanged.connect(self._on_current_changed)
        self.empty = QLabel()
        self.empty.setWordWrap(True)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.strength = QSlider(Qt.Orientation.Horizontal)
        self.strength.setRange(0, 100)
        self.strength.setValue(100)
        self.strength_label = QLabel("100%")
        self.strength.valueChanged.connect(self._on_strength_changed)
        self.feather = QSlider(Qt.Orientation.Horizontal)
        self.feather.setRange(0, 50)
        self.feather.setValue(round(DEFAULT_FEATHER * 100))
        self.feather.setToolTip("Width of the mask's soft edge, relative to the distance between the eyes")
        self.apply_button = QPushButton("Apply")
        self.apply_button.setDefault(True)
        self.apply_button.clicked.connect(self.apply_requested)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        policy = self.progress.sizePolicy()
        policy.setRetainSizeWhenHidden(True)  # the buttons above must not move when it appears
        self.progress.setSizePolicy(policy)
        self.progress.setVisible(False)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.status.setMinimumHeight(3 * self.status.fontMetrics().lineSpacing())
        """Why Apply is disabled; room for three lines, so a reason appearing moves nothing."""

        strength_row = QHBoxLayout()
        strength_row.addWidget(self.strength)
        strength_row.addWidget(self.strength_label)
        form = QFormLayout()
        form.addRow("Strength", strength_row)
        form.addRow("Mask feather", self.feather)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.models, 1)
        layout.addWidget(self.empty)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        self.set_entries([])

    def _on_current_changed(self, *_args: object) -> None:
        self.model_changed.emit(self.current_entry())

    def _on_strength_changed(self, value: int) -> None:
        self.strength_label.setText(f"{value}%")

    def set_apply_state(self, enabled: bool, reason: str) -> None:
        """Enable Apply, or disable it and say why (below the buttons and in the tooltip)."""
        self.apply_button.setEnabled(enabled)
        self.apply_button.setToolTip(reason or "Apply the selected edit to the selected faces (Ctrl+Enter)")
        self.status.setText(reason)

    def set_registry(self, registry: ModelRegistry, include_experimental: bool) -> None:
        """List the registry's models, experimental ones only if `include_experimental`."""
        hidden = 0 if include_experimental else len(registry.hidden_experimental())
        self.set_entries(registry.visible(include_experimental, include_unavailable=True), hidden)

    def set_entries(self, entries: list[ModelEntry], hidden_experimental: int = 0) -> None:
        """Show `entries` (unusable ones greyed out with their reason). The chosen model stays chosen if it
        is still listed; otherwise the first usable one is chosen (or none)."""
        previous = self.current_entry()
        self.models.clear()
        for entry in entries:
            text, tooltip = describe(entry)
            item = QListWidgetItem(text)
            item.setToolTip(tooltip)
            item.setData(ENTRY_ROLE, entry)
            if not entry.available:
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsSelectable & ~Qt.ItemFlag.ItemIsEnabled)
            self.models.addItem(item)
        usable = [i for i in range(self.models.count()) if self.models.item(i).data(ENTRY_ROLE).available]
        self.empty.setVisible(not usable)
        if hidden_experimental:
            self.empty.setText(
                f"No usable model is listed: {hidden_experimental} experimental model(s) are installed but "
                "hidden. Turn on Show experimental models in Settings to list them."
            )
        else:
            self.empty.setText(
                "No usable models are installed. Put a model folder (manifest.json and its ONNX files) into\n"
                f"{user_models_dir()}\nor add a folder in Settings. Train your own with diat-studio-train."
            )
        keep = next(
            (i for i in usable if previous and self.models.item(i).data(ENTRY_ROLE).name == previous.name),
            usable[0] if usable else None,
        )
        if keep is not None:
            self.models.setCurrentRow(keep)

    def current_entry(self) -> ModelEntry | None:
        item = self.models.currentItem()
        entry = item.data(ENTRY_ROLE) if item is not None else None
        return entry if entry is not None and entry.available else None

    def select_model(self, name: str) -> bool:
        for row in range(self.models.count()):
            entry = self.models.item(row).data(ENTRY_ROLE)
            if entry.name == name and entry.available:
                self.models.setCurrentRow(row)
                return True
        return False

    @property
    def strength_value(self) -> float:
        return self.strength.value() / 100.0

    @property
    def feather_value(self) -> float:
        return self.feather.value() / 100.0

    def set_busy(self, busy: bool) -> None:
        """An edit started or ended (the window then sets Apply's state and reason)."""
        if busy:
            self.apply_button.setEnabled(False)
        self.cancel_button.setEnabled(busy)
        self.progress.setVisible(busy)
        if busy:
            self.progress.setValue(0)

    def show_progress(self, text: str, fraction: float) -> None:
        self.progress.setValue(round(100 * fraction))
        self.progress.setFormat(f"{text} %p%")
