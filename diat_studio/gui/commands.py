"""Undoable changes: mask edits and applied attribute edits (QUndoStack commands)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QUndoCommand

from diat_studio.core.regions import Polygon, RegionKind
from diat_studio.gui.document import EditRecipe, PhotoDocument


class SetMaskCommand(QUndoCommand):
    """Replace (or reset, with `after=None`) one face's mask polygon."""

    def __init__(
        self,
        document: PhotoDocument,
        face: int,
        region: RegionKind,
        after: Polygon | None,
        text: str = "Edit mask",
    ) -> None:
        super().__init__(f"{text} (face {face + 1}, {region.value})")
        self.document = document
        self.face = face
        self.region = region
        self.before = document.polygon(face, region) if document.is_mask_edited(face, region) else None
        self.after = after

    def redo(self) -> None:
        self.document.set_polygon(self.face, self.region, self.after)

    def undo(self) -> None:
        self.document.set_polygon(self.face, self.region, self.before)


class ApplyEditCommand(QUndoCommand):
    """An applied attribute edit: the pixels before and after, and the recipe that made them."""

    def __init__(
        self, document: PhotoDocument, before: np.ndarray, after: np.ndarray, recipe: EditRecipe
    ) -> None:
        super().__init__(recipe.label)
        self.document = document
        self.before = before
        self.after = after
        self.recipe = recipe

    def redo(self) -> None:
        self.document.apply(self.recipe, self.after)

    def undo(self) -> None:
        self.document.unapply(self.before)
