"""A small real-face training set for the trainer tests, made from the astronaut photo (public domain).

"with/" has dark glasses drawn over the eyes, "without/" does not; both get small random rotations,
scales, shifts, flips and exposure changes so that every crop differs.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from diat_studio.core.faces import Face
from trainer.prepare import PrepareConfig, prepare_dataset

PER_CLASS = 12
CROP = 64

#: The bundled models (resources/models), which edit runs may go on from or be taught by.
BUNDLED_MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
#: Options of a tiny edit run on the astronaut set: a checkpoint and a log line every step.
TINY_EDIT_RUN = [
    "--discriminator-width",
    "4",
    "--batch-size",
    "4",
    "--checkpoint-every",
    "1",
    "--log-every",
    "1",
    "-q",
]


def _variant(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    angle = rng.uniform(-8, 8)
    scale = rng.uniform(0.9, 1.1)
    matrix = cv2.getRotationMatrix2D((256 + rng.uniform(-10, 10), 200 + rng.uniform(-10, 10)), angle, scale)
    warped = cv2.warpAffine(image, matrix, (512, 512), borderMode=cv2.BORDER_REFLECT)
    if rng.random() < 0.5:
        warped = warped[:, ::-1]
    return np.clip(warped.astype(float) * rng.uniform(0.85, 1.15), 0, 255).astype(np.uint8)


def _with_glasses(image: np.ndarray, face: Face) -> np.ndarray:
    out = image.copy()
    marks = face.landmarks
    for eye in (marks[36:42], marks[42:48]):
        centre = tuple(int(v) for v in eye.mean(0))
        cv2.ellipse(out, centre, (14, 10), 0, 0, 360, (20, 20, 25), -1)
    bridge = tuple(int(v) for v in marks[27])
    cv2.line(out, tuple(int(v) for v in marks[39]), bridge, (20, 20, 25), 3)
    cv2.line(out, bridge, tuple(int(v) for v in marks[42]), (20, 20, 25), 3)
    return out


@pytest.fixture(scope="session")
def face_photos(
    tmp_path_factory: pytest.TempPathFactory, astronaut: np.ndarray, astronaut_face: Face
) -> Path:
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    glasses = _with_glasses(astronaut, astronaut_face)
    for folder, source in (("with", glasses), ("without", astronaut)):
        (root / folder).mkdir()
        for index in range(PER_CLASS):
            Image.fromarray(_variant(source, rng)).save(root / folder / f"{index:02d}.jpg", quality=92)
    Image.fromarray(np.full((300, 300, 3), 90, np.uint8)).save(root / "without" / "blank.png")
    (root / "with" / "not-a-photo.jpg").write_text("text")
    return root


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory, face_photos: Path) -> Path:
    out = tmp_path_factory.mktemp("dataset")
    prepare_dataset(custom_layout_config(face_photos, out))
    return out


def custom_layout_config(source: Path, out: Path) -> PrepareConfig:
    """How the tests prepare the astronaut with/without-glasses photos: 64 px crops, a quarter held out."""
    return PrepareConfig(
        str(source),
        str(out),
        layout="custom",
        size=CROP,
        heldout_fraction=0.25,
        attribute="Eyeglasses",
        workers=1,
    )


def train_new_run(runs: Path, arguments: tuple[str, ...], options: list[str]) -> Path:
    """`diat-studio-train train ARGUMENTS --runs-dir RUNS OPTIONS`, which must succeed; the run folder it
    made."""
    from trainer.cli import EXIT_OK, main

    before = set(runs.iterdir()) if runs.exists() else set()
    assert main(["train", *arguments, "--runs-dir", str(runs), *options]) == EXIT_OK
    (new,) = set(runs.iterdir()) - before
    return new


@pytest.fixture(scope="session")
def evaluator(tmp_path_factory: pytest.TempPathFactory, dataset_dir: Path) -> Path:
    """A tiny Eyeglasses evaluator for `evaluate` on `dataset_dir` (its accuracy is not what is tested)."""
    from trainer.cli import EXIT_OK, main

    runs = tmp_path_factory.mktemp("evaluator-runs")
    arguments = ["classifier", "--data", str(dataset_dir), "--attribute", "Eyeglasses", "--steps", "2"]
    tiny = ["--batch-size", "8", "--classifier-width", "4", "--runs-dir", str(runs), "-q"]
    assert main([*arguments, *tiny]) == EXIT_OK
    return max(runs.iterdir())


def classifier_run(data: Path, runs: Path, stage: str, attribute: str, name: str) -> Path:
    """A finished tiny `classify` (guide) or `evaluator` run of 2 steps on the CPU."""
    from trainer.config import TrainConfig
    from trainer.runs import CONFIG_FILE, new_run_folder
    from trainer.training_loop import training_loop

    config = TrainConfig(
        stage=stage, data=str(data), attribute=attribute, steps=2, batch_size=4, classifier_width=4,
        discriminator_width=4, runs_dir=str(runs), device="cpu", sample_every=2, checkpoint_every=2,
        threads=1, name=name,
    )  # fmt: skip
    run = new_run_folder(runs, stage, name)
    (run / CONFIG_FILE).write_text(config.to_json())
    assert training_loop(config, run)["status"] == "done"
    return run
