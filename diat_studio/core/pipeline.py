"""The edit pipeline: align every face, transform, enhance, paste back through a soft mask.

Local attributes (mouth, eyeglasses) are composited only inside their region's mask — the polygon the
user may have edited. Global attributes (gender, age) go through the whole-face mask. `strength` scales
the mask, so 0 returns the photo unchanged and 1 the full edit.

Grey in → grey out: when a face's aligned crop is black and white (`colour.is_grey`), the model's output
crop is turned grey (`colour.to_grey_like`) before it is pasted back, so a black-and-white photo stays black
and white. Colour photos are not touched by this rule. `edit_crops` is the crop-level part (transform,
enhance, grey rule) that the trainer's evaluation runs too, so it measures what the app delivers.

A model whose manifest asks for more than one transform pass (`transform_passes`) runs again on its own
output: each earlier pass goes through the grey rule and the enhancer and is composited into the crop
through the face's mask (the crop itself for a global model), and the last pass is what is pasted back,
through the same mask, against the photo — outside the mask nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np

from diat_studio.core.alignment import AlignedFace, align_face
from diat_studio.core.colour import keep_grey
from diat_studio.core.compositing import composite_crops, paste_edit
from diat_studio.core.inference import AttributeModel, GlobalEnhancer, LocalEnhancer
from diat_studio.core.regions import Polygon, RegionKind, inter_ocular_distance, region_polygon

if TYPE_CHECKING:  # dlib: the trainer's evaluation imports this module where dlib is not installed
    from diat_studio.core.faces import Face

FaceSelection = Literal["all", "largest"]

#: Default feather width as a fraction of the inter-ocular distance (scale-free: same look at any size).
DEFAULT_FEATHER = 0.15

ProgressCallback = Callable[[str, float], None]
"""Called with (step name, fraction of the edit done)."""


class EditCancelled(Exception):
    """The caller's cancel check returned True between two steps."""


@dataclass(frozen=True, eq=False)
class EditResult:
    pixels: np.ndarray
    """The edited photo, same size as the input."""
    polygons: list[Polygon]
    """The mask polygon used for each edited face, in image coordinates."""
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per step: align, transform, enhance, paste."""
    crops: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """Per-face intermediate crops: original, transformed, enhanced (for inspection and comparisons).
    "enhanced" is what was pasted back (grey for a grey face)."""


def select_faces(faces: Sequence[Face], selection: FaceSelection) -> list[Face]:
    """All faces, or only the largest (faces come largest first from the detector)."""
    if selection == "largest":
        return sorted(faces, key=lambda face: face.box.area, reverse=True)[:1]
    if selection == "all":
        return list(faces)
    raise ValueError(f"face selection must be 'all' or 'largest', got {selection!r}")


def default_polygon(model: AttributeModel, face: Face) -> Polygon:
    """The region a model edits on a face: its manifest region, grown by the margin it was trained with, for
    local models; the face for global ones."""
    manifest = model.manifest
    region = manifest.region if manifest.kind == "local" else RegionKind.FACE
    return region_polygon(region, face.landmarks, manifest.region_margin)


def enhance_crops(
    model: AttributeModel, transformed: np.ndarray, originals: np.ndarray, crop_masks: np.ndarray | None
) -> np.ndarray:
    """The model's enhancement network on its transformed crops (the transformed crops if it has none).

    A local enhancer needs `crop_masks` (N×S×S float32, the region's soft mask in crop coordinates).
    """
    if isinstance(model.enhancer, LocalEnhancer):
        if crop_masks is None:
            raise ValueError(f"{model.name}: a local enhancer needs the region masks of the crops")
        return model.enhancer(transformed, originals, crop_masks)
    if isinstance(model.enhancer, GlobalEnhancer):
        return model.enhancer(transformed)
    return transformed


def earlier_passes(
    model: AttributeModel, originals: np.ndarray, crop_masks: np.ndarray | None, *, grey_rule: bool = True
) -> np.ndarray:
    """The crops the model's last transform pass starts from: `originals` for a single-pass model; else
    each earlier pass (transform, enhance, grey rule) composited into the crop through `crop_masks`
    (N×S×S float32; needed for a local model) — see the module docstring."""
    passes = model.manifest.transform_passes
    if passes == 1:
        return originals
    if model.manifest.kind == "local" and crop_masks is None:
        raise ValueError(
            f"{model.name}: a local model with {passes} passes needs the region masks of the crops"
        )
    current = originals
    for _ in range(passes - 1):
        transformed = model.transform(current)
        output = enhance_crops(model, transformed, current, crop_masks)
        if grey_rule:
            output = keep_grey(originals, output)
        if crop_masks is None or model.manifest.kind == "global":
            current = output
        else:
            current = composite_crops(current, output, crop_masks)
    return current


def edit_crops(
    model: AttributeModel,
    originals: np.ndarray,
    crop_masks: np.ndarray | None = None,
    *,
    grey_rule: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """(transformed, output) crops of N aligned N×S×S×3 uint8 faces: transform, enhance, grey rule (each
    of the model's transform passes: `earlier_passes`).

    The output is what `edit_photo` pastes back through the region mask. `grey_rule=False` leaves the
    grey rule out (the evaluation's check of what the networks alone do to a grey face).
    """
    current = earlier_passes(model, originals, crop_masks, grey_rule=grey_rule)
    transformed = model.transform(current)
    output = enhance_crops(model, transformed, current, crop_masks)
    return transformed, keep_grey(originals, output) if grey_rule else output


def edit_photo(
    pixels: np.ndarray,
    faces: Sequence[Face],
    model: AttributeModel,
    *,
    strength: float = 1.0,
    polygons: Sequence[Polygon | None] | None = None,
    feather: float = DEFAULT_FEATHER,
    progress: ProgressCallback | None = None,
    is_cancelled: Callable[[], bool] | None = None,
    detail: bool = True,
) -> EditResult:
    """Apply one attribute model to `faces` of an H×W×3 uint8 RGB photo; the input array is not modified.

    `polygons[i]`, when given, replaces face i's default mask polygon (image coordinates). `feather` is
    the soft edge's width as a fraction of the face's inter-ocular distance. `detail` keeps the photo's
    own fine detail where the edit did not change the structure (diat_studio.core.compositing); False
    pastes the enlarged edited crop itself (for comparisons).
    """
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {strength}")
    if polygons is not None and len(polygons) != len(faces):
        raise ValueError(f"got {len(polygons)} polygons for {len(faces)} faces")
    timings: dict[str, float] = {}
    if not faces:
        return EditResult(pixels.copy(), [], timings)

    def step(name: str, fraction: float) -> None:
        if is_cancelled is not None and is_cancelled():
            raise EditCancelled
        if progress is not None:
            progress(name, fraction)

    manifest = model.manifest
    template = manifest.template
    n = template.size

    step("align", 0.0)
    started = time.perf_counter()
    aligned: list[AlignedFace] = [align_face(pixels, face.landmarks, template) for face in faces]
    used = [
        (polygons[i] if polygons is not None and polygons[i] is not None else default_polygon(model, face))
        for i, face in enumerate(faces)
    ]
    feathers = [feather * inter_ocular_distance(face.landmarks) for face in faces]
    originals = np.stack([a.crop for a in aligned])

    crop_masks = None
    if isinstance(model.enhancer, LocalEnhancer) or (
        manifest.kind == "local" and manifest.transform_passes > 1
    ):
        crop_masks = np.stack(
            [
                polygon.transformed(a.matrix).rasterise(n, n, width * a.scale).full(n, n)
                for polygon, a, width in zip(used, aligned, feathers, strict=True)
            ]
        )
    timings["align"] = time.perf_counter() - started

    step("transform", 0.2)
    started = time.perf_counter()
    current = earlier_passes(model, originals, crop_masks)
    transformed = model.transform(current)
    timings["transform"] = time.perf_counter() - started

    step("enhance", 0.6)
    started = time.perf_counter()
    # grey in → grey out, before paste-back (see the module docstring)
    enhanced = keep_grey(originals, enhance_crops(model, transformed, current, crop_masks))
    timings["enhance"] = time.perf_counter() - started

    step("paste", 0.8)
    started = time.perf_counter()
    out = pixels.copy()
    if strength > 0:
        for polygon, a, crop, edge in zip(used, aligned, enhanced, feathers, strict=True):
            paste_edit(out, a, crop, polygon, edge, strength=strength, detail=detail)
    timings["paste"] = time.perf_counter() - started
    step("done", 1.0)
    crops = {"original": list(originals), "transformed": list(transformed), "enhanced": list(enhanced)}
    return EditResult(out, used, timings, crops)
