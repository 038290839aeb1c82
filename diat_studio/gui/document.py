"""The open photo: its pixels (current and original), faces, selection and edited masks.

Changes that a user can undo go through the undo stack (commands.py); this class only holds state and
announces changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from diat_studio.core.faces import Face
from diat_studio.core.image_io import Photo
from diat_studio.core.regions import Polygon, RegionKind, region_polygon


@dataclass(frozen=True)
class EditRecipe:
    """What an applied edit did, enough to redo it on the photo it was applied to: the model and its
    settings, the faces it edited and the mask polygons it used (crash recovery replays these)."""

    model: str
    label: str
    strength: float
    feather: float
    faces: tuple[int, ...]
    polygons: tuple[Polygon, ...]


class PhotoDocument(QObject):
    pixels_changed = Signal()
    masks_changed = Signal()
    selection_changed = Signal()

    def __init__(self, photo: Photo, faces: list[Face], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.photo = photo
        self.original = photo.pixels
        self.pixels = photo.pixels
        self.faces = faces
        self.selected: set[int] = set(range(len(faces)))
        self._polygons: dict[tuple[int, RegionKind], Polygon] = {}
        self.saved_path: Path | None = photo.source_path
        self.applied: list[EditRecipe] = []
        """The edits that made `pixels` from `original`, in order (kept in step by the undo commands)."""

    @property
    def path(self) -> Path | None:
        return self.photo.source_path

    def set_pixels(self, pixels: np.ndarray) -> None:
        self.pixels = pixels
        self.pixels_changed.emit()

    def apply(self, recipe: EditRecipe, pixels: np.ndarray) -> None:
        self.applied.append(recipe)
        self.set_pixels(pixels)

    def unapply(self, pixels: np.ndarray) -> None:
        self.applied.pop()
        self.set_pixels(pixels)

    def current_photo(self) -> Photo:
        return self.photo.with_pixels(self.pixels)

    # -- masks -------------------------------------------------------------------------------------------

    def polygon(self, face: int, region: RegionKind, margin: float | None = None) -> Polygon:
        """The mask polygon of a face's region: the user's edit, or the one built from the landmarks with
        `margin` (the chosen model's, from its manifest; None: the region's default)."""
        return self._polygons.get((face, region)) or region_polygon(
            region, self.faces[face].landmarks, margin
        )

    def edited_masks(self) -> dict[tuple[int, RegionKind], Polygon]:
        """The masks the user reshaped (the others follow the landmarks)."""
        return dict(self._polygons)

    def is_mask_edited(self, face: int, region: RegionKind) -> bool:
        return (face, region) in self._polygons

    def set_polygon(self, face: int, region: RegionKind, polygon: Polygon | None) -> None:
        """Set (or with None, reset to the landmarks) a face's mask polygon."""
        if polygon is None:
            self._polygons.pop((face, region), None)
        else:
            self._polygons[(face, region)] = polygon
        self.masks_changed.emit()

    # -- selection ---------------------------------------------------------------------------------------

    def select(self, faces: set[int]) -> None:
        faces = {i for i in faces if 0 <= i < len(self.faces)}
        if faces != self.selected:
            self.selected = faces
            self.selection_changed.emit()

    def selected_faces(self) -> list[int]:
        return sorted(self.selected)
