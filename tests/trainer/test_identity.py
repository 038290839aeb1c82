from __future__ import annotations

import numpy as np
import torch

from diat_studio.core.alignment import CanonicalTemplate, align_face
from diat_studio.core.faces import Face
from trainer.data import to_tensor
from trainer.identity import FaceIdentity


def test_descriptor_from_our_crop_matches_dlibs_own_chip(astronaut: np.ndarray, astronaut_face: Face) -> None:
    """The fixed crop → chip warp is right: at 256 px our descriptor is within 0.1 of dlib's."""
    import dlib

    from diat_studio.core.dlib_models import FACE_RECOGNITION_RESNET, LANDMARKS_68, dlib_model_path

    box = astronaut_face.box
    rect = dlib.rectangle(int(box.left), int(box.top), int(box.right) - 1, int(box.bottom) - 1)
    shape = dlib.shape_predictor(str(dlib_model_path(LANDMARKS_68)))(astronaut, rect)
    recogniser = dlib.face_recognition_model_v1(str(dlib_model_path(FACE_RECOGNITION_RESNET)))
    reference = np.array(recogniser.compute_face_descriptor(astronaut, shape))
    template = CanonicalTemplate(size=256)
    crop = align_face(astronaut, astronaut_face.landmarks, template).crop
    ours = FaceIdentity(template).descriptors(to_tensor(crop[None]))[0].numpy()
    assert np.linalg.norm(ours - reference) < 0.1


def test_identity_features_have_gradients(astronaut: np.ndarray, astronaut_face: Face) -> None:
    template = CanonicalTemplate(size=64)
    identity = FaceIdentity(template)
    crop = to_tensor(align_face(astronaut, astronaut_face.landmarks, template).crop[None]).requires_grad_()
    features, descriptor = identity(crop)
    (sum(f.pow(2).mean() for f in features) + descriptor.pow(2).sum()).backward()
    assert crop.grad is not None and torch.isfinite(crop.grad).all() and crop.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in identity.parameters())
