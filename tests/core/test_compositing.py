"""Detail-preserving paste-back (diat_studio.core.compositing) on real faces at 100 to 1,000 px."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from diat_studio.core.alignment import CanonicalTemplate, align_face
from diat_studio.core.colour import channel_spread, to_grey_like
from diat_studio.core.compositing import DetailSettings, paste_edit
from diat_studio.core.faces import Box, Face
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.pipeline import DEFAULT_FEATHER, edit_photo
from diat_studio.core.regions import RegionKind, inter_ocular_distance, region_polygon
from diat_studio.core.registry import ModelRegistry
from tests.onnx_fixtures import constant_transform, model_folder, replace_transform


def enlarged(astronaut: np.ndarray, face: Face, width: int, grain: float = 3.0) -> tuple[np.ndarray, Face]:
    """The astronaut enlarged so that the face is `width` px wide (a canvas 2.4× the face), with grain."""
    scale = width / face.box.width
    big = cv2.resize(astronaut, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    side = int(2.4 * width)
    cx, cy = (face.box.left + face.box.right) / 2 * scale, (face.box.top + face.box.bottom) / 2 * scale
    x0 = int(np.clip(cx - side / 2, 0, big.shape[1] - min(side, big.shape[1])))
    y0 = int(np.clip(cy - side / 2, 0, big.shape[0] - min(side, big.shape[0])))
    canvas = big[y0 : y0 + side, x0 : x0 + side].astype(np.float32)
    canvas += np.random.default_rng(width).normal(0, grain, canvas.shape[:2])[..., None]
    b = face.box
    box = Box(b.left * scale - x0, b.top * scale - y0, b.right * scale - x0, b.bottom * scale - y0)
    pixels = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return pixels, Face(box, face.landmarks * scale - (x0, y0))


@pytest.fixture(scope="module")
def no_op(tmp_path_factory: pytest.TempPathFactory) -> AttributeModel:
    root = tmp_path_factory.mktemp("no-op")
    model_folder(root, "no-op", "global", with_enhancer=False, gain=(1.0, 1.0, 1.0), bias=(0.0, 0.0, 0.0))
    return load_attribute_model(ModelRegistry([root]).get("no-op"), Device.CPU)


@pytest.fixture(scope="module")
def reddening(tmp_path_factory: pytest.TempPathFactory) -> AttributeModel:
    root = tmp_path_factory.mktemp("redden")
    # milder than the default fixture, whose red saturates at 255 on a quarter of the skin (no detail is
    # left to keep where a channel clips)
    model_folder(
        root, "redden", "global", with_enhancer=False, gain=(1.0, 0.8, 0.8), bias=(0.12, -0.05, -0.05)
    )
    return load_attribute_model(ModelRegistry([root]).get("redden"), Device.CPU)


@pytest.mark.parametrize("width", [100, 250, 500, 1000])
def test_a_no_op_model_leaves_the_photo_as_it_was(astronaut, astronaut_face, no_op, width: int) -> None:
    pixels, face = enlarged(astronaut, astronaut_face, width)
    kept = edit_photo(pixels, [face], no_op).pixels
    assert np.abs(kept.astype(int) - pixels).max() <= 1
    if width >= 250:  # the enlarged crop itself (detail transfer off) is a soft patch: the test can fail
        soft = edit_photo(pixels, [face], no_op, detail=False).pixels
        assert np.abs(soft.astype(int) - pixels).mean() > 0.3


def _draw_frames(pixels: np.ndarray, face: Face) -> np.ndarray:
    framed = pixels.copy()
    marks = face.landmarks
    iod = inter_ocular_distance(marks)
    thickness = max(2, round(0.06 * iod))
    for eye in (marks[36:42], marks[42:48]):
        centre = tuple(int(v) for v in eye.mean(0))
        cv2.ellipse(
            framed, centre, (round(0.42 * iod), round(0.27 * iod)), 0, 0, 360, (25, 22, 20), thickness
        )
    left, right = marks[39].astype(int), marks[42].astype(int)
    cv2.line(framed, tuple(left), tuple(right), (25, 22, 20), thickness)
    return framed


def test_removed_frames_do_not_come_back_as_edges(astronaut, astronaut_face, tmp_path: Path) -> None:
    """A model that erases dark glasses frames (it returns the clean face): the photo's detail is kept
    around them, but the frames' own edges are not pasted back."""
    clean, face = enlarged(astronaut, astronaut_face, 500)
    framed = _draw_frames(clean, face)
    folder = model_folder(tmp_path, "remove-frames", "local", RegionKind.EYES, with_enhancer=False)
    template_crop = align_face(
        clean, face.landmarks, ModelRegistry([tmp_path]).get("remove-frames").manifest.template
    ).crop  # type: ignore[union-attr]
    replace_transform(folder, constant_transform, image=template_crop)
    model = load_attribute_model(ModelRegistry([tmp_path]).get("remove-frames"), Device.CPU)
    result = edit_photo(framed, [face], model).pixels

    height, width = clean.shape[:2]
    polygon = region_polygon(RegionKind.EYES, face.landmarks)
    feather = DEFAULT_FEATHER * inter_ocular_distance(face.landmarks)
    inside = polygon.rasterise(height, width, feather).full(height, width) >= 1.0
    frame = np.any(framed != clean, axis=2) & inside
    assert frame.sum() > 500

    def frame_error(image: np.ndarray) -> float:
        return float(np.abs(image.astype(int) - clean.astype(int))[frame].mean())

    # the same paste without the structure rule: the frames' pixels keep their dark detail
    aligned = align_face(framed, face.landmarks, model.manifest.template)
    naive = framed.copy()
    never = DetailSettings(gradient_change=(1e9, 2e9), brightness_change=(1e9, 2e9))
    paste_edit(naive, aligned, template_crop, polygon, feather, settings=never)
    assert frame_error(result) < 15 < frame_error(naive)

    def edges(image: np.ndarray) -> float:
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
        band = cv2.dilate(frame.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        return float(
            cv2.magnitude(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))[band].mean()
        )

    assert edges(result) < 1.5 * edges(clean) < edges(naive)
    # and away from the frames (beyond 4 crop pixels: the model's own resolution), the photo's detail
    # (here: its grain) is kept
    reach = 2 * round(4 / align_face(clean, face.landmarks, model.manifest.template).scale) + 1
    rest = inside & ~cv2.dilate(frame.astype(np.uint8), np.ones((reach, reach), np.uint8)).astype(bool)
    assert rest.sum() > 0.05 * inside.sum()
    laplacian = lambda image: cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F)[rest].var()  # noqa: E731
    assert laplacian(result) > 0.9 * laplacian(clean)


@pytest.mark.parametrize("width", [120, 500])
def test_what_a_local_model_writes_outside_its_region_never_reaches_the_photo(
    astronaut, astronaut_face, width: int
) -> None:
    """A local editor is trained on x + m ⊙ Δ, so its raw output outside the region is anything (the mouth
    editors of 2026-11-27 wrote a strong pattern there). Blurring the change to split its bands must not
    pull that into the pasted region: a model that changes nothing inside the mouth changes nothing."""
    pixels, face = enlarged(astronaut, astronaut_face, width)
    template = CanonicalTemplate()
    aligned = align_face(pixels, face.landmarks, template)
    polygon = region_polygon(RegionKind.MOUTH, face.landmarks)
    crop_polygon = polygon.transformed(aligned.matrix)
    n = template.size
    inside = crop_polygon.rasterise(n, n).full(n, n) > 0
    pattern = np.random.default_rng(0).integers(0, 2, (n, n, 1)) * np.array([[[255, 0, 255]]])
    edited = np.where(inside[..., None], aligned.crop, pattern).astype(np.uint8)
    feather = DEFAULT_FEATHER * inter_ocular_distance(face.landmarks)
    out = pixels.copy()
    paste_edit(out, aligned, edited, polygon, feather)
    assert np.abs(out.astype(int) - pixels).max() <= 1


def test_a_grey_photo_stays_grey_at_full_resolution(astronaut, astronaut_face, reddening) -> None:
    pixels, face = enlarged(astronaut, astronaut_face, 1000)
    grey = to_grey_like(pixels)
    result = edit_photo(grey, [face], reddening).pixels
    assert channel_spread(result).max() == 0
    assert np.any(result != grey)


def test_detail_stays_sharp_where_the_edit_only_shifts_colour(astronaut, astronaut_face, reddening) -> None:
    pixels, face = enlarged(astronaut, astronaut_face, 1000)
    polygon = region_polygon(RegionKind.FACE, face.landmarks)
    height, width = pixels.shape[:2]
    feather = DEFAULT_FEATHER * inter_ocular_distance(face.landmarks)
    inside = polygon.rasterise(height, width, feather).full(height, width) >= 1.0

    def detail(image: np.ndarray) -> float:
        return float(cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_32F)[inside].var())

    sharp = edit_photo(pixels, [face], reddening).pixels
    soft = edit_photo(pixels, [face], reddening, detail=False).pixels
    assert detail(sharp) >= 0.9 * detail(pixels) > 2 * detail(soft)
    # the colour change itself is the model's: red up, green down, in both
    for out in (sharp, soft):
        assert out[inside][:, 0].mean() > pixels[inside][:, 0].mean() + 10


def test_a_256_px_model_works_end_to_end(astronaut, astronaut_face, tmp_path: Path) -> None:
    model_folder(tmp_path, "redden-256", "local", RegionKind.MOUTH, crop_size=256)
    model = load_attribute_model(ModelRegistry([tmp_path]).get("redden-256"), Device.CPU)
    result = edit_photo(astronaut, [astronaut_face], model)
    assert result.crops["original"][0].shape == (256, 256, 3)
    mouth = (
        region_polygon(RegionKind.MOUTH, astronaut_face.landmarks).rasterise(512, 512, 1).full(512, 512) > 0
    )
    diff = np.any(result.pixels != astronaut, axis=2)
    assert diff.sum() > 400 and not diff[~mouth].any()


def test_the_pasted_edge_follows_the_exact_distance_to_the_polygon(astronaut, astronaut_face) -> None:
    """A strong change ramps in over the mask's edge. Built from a distance transform of the crop's pixel
    fill, that ramp stepped along every slanted edge, and enlarged into the photo it drew a dotted line
    around the mouth (the mouth editors' grids). The pasted change must follow the true distance."""
    pixels, face = enlarged(astronaut, astronaut_face, 500, grain=0.0)
    pixels[:] = 128  # flat: only the mask's shape shows in the pasted change
    template = CanonicalTemplate()
    aligned = align_face(pixels, face.landmarks, template)
    polygon = region_polygon(RegionKind.MOUTH, face.landmarks)
    feather = DEFAULT_FEATHER * inter_ocular_distance(face.landmarks)
    out = pixels.copy()
    paste_edit(out, aligned, np.full_like(aligned.crop, 168), polygon, feather)
    change = out[..., 1].astype(np.float64) - 128
    height, width = pixels.shape[:2]
    distance = polygon.edge_distance(height, width) * aligned.scale  # in crop pixels
    wide = DetailSettings().wide_feather * feather * aligned.scale
    ramp = np.clip(distance / wide, 0.0, 1.0)
    expected = 40 * ramp * ramp * (3.0 - 2.0 * ramp)
    band = (distance > 0) & (ramp < 1)
    assert band.sum() > 1000
    assert np.abs(change[band] - expected[band]).max() <= 2.5
