"""The torch port of dlib's face-recognition ResNet must give dlib's own descriptors."""

from __future__ import annotations

import dlib
import numpy as np
import pytest
import torch

from diat_studio.core.dlib_models import FACE_RECOGNITION_RESNET, LANDMARKS_68, dlib_model_path
from diat_studio.core.image_io import load_photo
from tests.conftest import shared_data
from trainer.dlib_resnet import DlibFaceResNet, read_dlib_resnet


@pytest.fixture(scope="module")
def port() -> DlibFaceResNet:
    return DlibFaceResNet.from_dat()


@pytest.fixture(scope="module")
def dlib_models():
    return (
        dlib.get_frontal_face_detector(),
        dlib.shape_predictor(str(dlib_model_path(LANDMARKS_68))),
        dlib.face_recognition_model_v1(str(dlib_model_path(FACE_RECOGNITION_RESNET))),
    )


def chips_of(images: list[np.ndarray], dlib_models) -> list[tuple[np.ndarray, np.ndarray]]:
    """(150×150 chip, dlib's descriptor) for the largest face of each image."""
    detector, predictor, recogniser = dlib_models
    out = []
    for image in images:
        boxes = detector(image, 1)
        if not boxes:
            continue
        box = max(boxes, key=lambda b: b.area())
        shape = predictor(image, box)
        chip = dlib.get_face_chip(image, shape, 150, 0.25)
        out.append((chip, np.array(recogniser.compute_face_descriptor(image, shape))))
    return out


def descriptors(port: DlibFaceResNet, chips: list[np.ndarray]) -> np.ndarray:
    batch = torch.from_numpy(np.stack(chips)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return port(batch).numpy()


def test_weights_are_read_from_the_dat_file() -> None:
    convs, affines, fc = read_dlib_resnet(dlib_model_path(FACE_RECOGNITION_RESNET))
    assert len(convs) == 29 and len(affines) == 29 and fc.shape == (256, 128)
    assert convs[0].weight.shape == (32, 3, 7, 7) and convs[0].stride == 2 and convs[0].padding == 0
    total = sum(c.weight.size + c.bias.size for c in convs) + sum(2 * a.gamma.size for a in affines) + fc.size
    assert 5.5e6 < total < 5.7e6


def test_port_matches_dlib_on_the_astronaut(port, dlib_models, astronaut: np.ndarray) -> None:
    pairs = chips_of([astronaut, np.ascontiguousarray(astronaut[:, ::-1])], dlib_models)
    assert len(pairs) == 2
    ours = descriptors(port, [chip for chip, _ in pairs])
    for mine, (_, reference) in zip(ours, pairs, strict=True):
        assert np.abs(mine - reference).max() < 1e-4


@pytest.mark.shared_data
def test_port_matches_dlib_on_real_photos(port, dlib_models) -> None:
    folder = shared_data("celeba-wild", "images")
    images = [load_photo(path).pixels for path in sorted(folder.iterdir())[:12]]
    pairs = chips_of(images, dlib_models)
    assert len(pairs) >= 10
    ours = descriptors(port, [chip for chip, _ in pairs])
    references = np.stack([reference for _, reference in pairs])
    assert np.abs(ours - references).max() < 1e-4
    # and the descriptors tell people apart: different photos are mostly far apart
    distances = np.linalg.norm(references[:, None] - references[None], axis=2)
    assert np.median(distances[np.triu_indices(len(references), 1)]) > 0.6


def test_stage_features_have_the_documented_shapes(port) -> None:
    stages, descriptor = port.features(torch.zeros(2, 3, 150, 150))
    shapes = {name: tuple(t.shape) for name, t in stages.items()}
    assert shapes == {
        "level4": (2, 32, 35, 35),
        "level3": (2, 64, 17, 17),
        "level2": (2, 128, 8, 8),
        "level1": (2, 256, 4, 4),
        "level0": (2, 256, 2, 2),
    }
    assert descriptor.shape == (2, 128)
