"""Paste-back at full resolution: detail kept, seam, grey, time — at face widths from ~100 to ~1,900 px.

    .venv/bin/python bench/bench_paste.py [--repeat 3] [--images docs/images/paste-back]

Photos: a real CelebA-wild photo (face ≈ 100 px; ../shared/data, skipped when absent), the bundled sample
(the astronaut, face ≈ 90 px), and the astronaut enlarged (cubic) so that the face is 250, 500, 1,000 and
1,900 px wide on a canvas up to 4000×3000 (12 MP), with sensor-like grain added (Gaussian, σ = 3 levels)
because an enlarged photo has no detail of its own to keep. Models: the bundled male → female (global)
and open mouth (local). For each photo, model and paste-back (detail transfer on / off):

- sharpness: variance of the Laplacian of the edited photo's grey image over the *unchanged* part of the
  edited face (inside the mask's full-strength area, where the model changed the crop by < 6 levels),
  over the photo's own — 1.0 keeps the photo's detail, below 1 is a soft patch;
- seam: mean gradient magnitude of the edited photo in the mask's feathered band (and 2 px outside), over
  the photo's own there — 1.0 is no visible edge;
- ΔE: mean CIE76 colour difference between the edited photo and the photo over the same unchanged part
  (target ≤ 2), beside the model's own ΔE there (its edited crop against its input crop, both enlarged):
  the part above the model's own is what the paste-back adds;
- grey: the same edit on a grey copy of the photo keeps its channel spread (yes / no);
- paste ms: `edit_photo`'s paste-back step for the one face; edit ms: the whole edit (align, networks,
  paste; detection excluded: the app detects once when a photo opens). Median of --repeat runs.

`--images DIR` also writes before / detail off / detail on at 100% (JPEG) for the 1,000 px face.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diat_studio.core.alignment import align_face
from diat_studio.core.colour import channel_spread, to_grey_like
from diat_studio.core.faces import Box, Face, FaceDetector
from diat_studio.core.image_io import load_photo
from diat_studio.core.inference import AttributeModel, Device, load_attribute_model
from diat_studio.core.pipeline import DEFAULT_FEATHER, edit_photo
from diat_studio.core.regions import inter_ocular_distance
from diat_studio.core.registry import ModelRegistry

REPOSITORY = Path(__file__).resolve().parents[1]
MODELS = ("male-to-female", "open-mouth")
FACE_WIDTHS = (250, 500, 1000, 1900)


def photos(detector: FaceDetector) -> list[tuple[str, np.ndarray, Face]]:
    found = []
    wild_folder = REPOSITORY.parent / "shared" / "data" / "celeba-wild" / "images"
    wild = min(wild_folder.glob("*.jpg"), default=None) if wild_folder.is_dir() else None
    if wild is not None:
        pixels = load_photo(wild).pixels
        faces = detector.detect(pixels)
        if faces:
            found.append(("CelebA-wild photo", pixels, faces[0]))
    sample = load_photo(REPOSITORY / "resources" / "sample" / "astronaut.jpg").pixels
    face = detector.detect(sample)[0]
    found.append(("the sample", sample, face))
    rng = np.random.default_rng(0)
    for width in FACE_WIDTHS:
        scale = width / face.box.width
        big = cv2.resize(sample, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        cx, cy = (face.box.left + face.box.right) / 2 * scale, (face.box.top + face.box.bottom) / 2 * scale
        w, h = min(big.shape[1], 4000), min(big.shape[0], 3000)
        x0 = int(np.clip(cx - w / 2, 0, big.shape[1] - w))
        y0 = int(np.clip(cy - h / 2, 0, big.shape[0] - h))
        canvas = big[y0 : y0 + h, x0 : x0 + w].astype(np.float32) + rng.normal(0, 3, (h, w, 1))
        canvas = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        marks = face.landmarks * scale - (x0, y0)
        b = face.box
        box = Box(b.left * scale - x0, b.top * scale - y0, b.right * scale - x0, b.bottom * scale - y0)
        found.append((f"astronaut, {width} px face", canvas, Face(box, marks)))
    return found


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)


def _lab_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel CIE76 ΔE between two RGB uint8 images."""
    lab = [cv2.cvtColor(x.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB) for x in (a, b)]
    return np.linalg.norm(lab[0] - lab[1], axis=2)


def measure(pixels: np.ndarray, face: Face, model: AttributeModel, detail: bool, repeat: int) -> dict:
    results = [edit_photo(pixels, [face], model, detail=detail) for _ in range(repeat)]
    result = results[0]
    polygon = result.polygons[0]
    height, width = pixels.shape[:2]
    feather = DEFAULT_FEATHER * inter_ocular_distance(face.landmarks)
    soft = polygon.rasterise(height, width, feather).full(height, width)
    aligned = align_face(pixels, face.landmarks, model.manifest.template)
    change = np.abs(
        result.crops["enhanced"][0].astype(np.float32) - result.crops["original"][0].astype(np.float32)
    ).max(axis=2)
    inverse = cv2.invertAffineTransform(aligned.matrix)
    change_up = cv2.warpAffine(change, inverse, (width, height))
    unchanged = (soft >= 0.999) & (change_up < 6)
    lap_out = cv2.Laplacian(_grey(result.pixels), cv2.CV_32F)
    lap_in = cv2.Laplacian(_grey(pixels), cv2.CV_32F)
    sharpness = (
        float(lap_out[unchanged].var() / max(lap_in[unchanged].var(), 1e-9)) if unchanged.any() else None
    )
    delta_e = float(_lab_distance(result.pixels, pixels)[unchanged].mean()) if unchanged.any() else None
    crops_up = [
        cv2.warpAffine(result.crops[key][0], inverse, (width, height), flags=cv2.INTER_LINEAR)
        for key in ("enhanced", "original")
    ]
    model_delta_e = float(_lab_distance(*crops_up)[unchanged].mean()) if unchanged.any() else None
    outside = cv2.dilate((soft > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    band = outside & (soft < 0.999)
    gradient = lambda g: cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))  # noqa: E731
    seam = float(
        gradient(_grey(result.pixels))[band].mean() / max(gradient(_grey(pixels))[band].mean(), 1e-9)
    )
    grey = to_grey_like(pixels)
    grey_out = edit_photo(grey, [face], model, detail=detail).pixels
    return {
        "sharpness": sharpness,
        "seam": seam,
        "delta_e": delta_e,
        "model_delta_e": model_delta_e,
        "grey": channel_spread(grey_out).max() == channel_spread(grey).max(),
        "paste_ms": 1000 * statistics.median(r.timings["paste"] for r in results),
        "edit_ms": 1000 * statistics.median(sum(r.timings.values()) for r in results),
        "result": result,
    }


def save_images(
    folder: Path, name: str, pixels: np.ndarray, outputs: dict[bool, np.ndarray], face: Face
) -> None:
    """Before | detail off | detail on, a 100% crop around the face (JPEG, quality 88)."""
    folder.mkdir(parents=True, exist_ok=True)
    box = face.box
    side = int(box.width * 0.6)
    cx, cy = int((box.left + box.right) / 2), int((box.top + box.bottom) / 2 + 0.1 * box.height)
    x0, y0 = max(cx - side // 2, 0), max(cy - side // 2, 0)
    for label, image in (("before", pixels), ("detail-off", outputs[False]), ("detail-on", outputs[True])):
        tile = image[y0 : y0 + side, x0 : x0 + side]
        cv2.imwrite(str(folder / f"{name}-{label}.jpg"), tile[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 88])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--images", type=Path, help="write before/after crops for the 1,000 px face here")
    options = parser.parse_args()
    registry = ModelRegistry([REPOSITORY / "resources" / "models"])
    models = {name: load_attribute_model(registry.get(name), Device.CPU) for name in MODELS}
    detector = FaceDetector()
    print(
        "| photo | face px | model | detail | sharpness (≥ 0.9) | seam (≤ 1.2) | ΔE unchanged (≤ 2) "
        "| model's own ΔE | grey | paste ms | edit ms |"
    )
    print("|---|---:|---|---|---:|---:|---:|---:|---|---:|---:|")
    for label, pixels, face in photos(detector):
        for name, model in models.items():
            outputs = {}
            for detail in (False, True):
                m = measure(pixels, face, model, detail, options.repeat)
                outputs[detail] = m["result"].pixels
                sharp = "—" if m["sharpness"] is None else f"{m['sharpness']:.2f}"
                delta_e = "—" if m["delta_e"] is None else f"{m['delta_e']:.2f}"
                model_delta_e = "—" if m["model_delta_e"] is None else f"{m['model_delta_e']:.2f}"
                grey = "kept" if m["grey"] else "LOST"
                print(
                    f"| {label} | {face.box.width:.0f} | {name} | {'on' if detail else 'off'} | {sharp} "
                    f"| {m['seam']:.2f} | {delta_e} | {model_delta_e} | {grey} | {m['paste_ms']:.0f} "
                    f"| {m['edit_ms']:.0f} |",
                    flush=True,
                )
            if options.images and label.endswith("1000 px face"):
                save_images(options.images, name, pixels, outputs, face)


if __name__ == "__main__":
    main()
