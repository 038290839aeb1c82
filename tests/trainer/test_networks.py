from __future__ import annotations

import pytest
import torch
from torch import nn

from trainer.networks import NETWORKS, build_network, count_parameters


def test_transform_network_is_the_papers_16_layers() -> None:
    net = build_network("transform", width=8)
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 16
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in net.modules()) == 15
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = net(x)
    assert y.shape == x.shape and y.abs().max() <= 1.0


def test_every_registered_network_builds_and_runs() -> None:
    x = torch.zeros(2, 3, 64, 64)
    mask = torch.zeros(2, 1, 64, 64)
    for name, kind in NETWORKS.items():
        net = build_network(name, width=4)
        assert isinstance(net, kind)
        if name == "local_enhancer":
            out = net(x, x, mask)
        elif name in ("discriminator", "sn_discriminator"):
            logits, features = net(x)
            assert logits.shape == (2,) and len(features) == 5
            continue
        elif name == "classifier":
            assert net(x).shape == (2,)
            continue
        else:
            out = net(x)
        assert out.shape == x.shape
        assert count_parameters(net) > 0


def test_enhancers_start_as_the_identity() -> None:
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.allclose(build_network("global_enhancer", width=4)(x), x)
    assert torch.allclose(build_network("denoiser", width=4)(x), x)


def test_unknown_network() -> None:
    with pytest.raises(ValueError, match="unknown network"):
        build_network("vgg")


def test_untrained_local_enhancer_is_the_mask_composite() -> None:
    """E_local starts from m·T(x) + (1 − m)·x: outside the mask it returns the photo untouched."""
    transformed = torch.rand(2, 3, 32, 32) * 2 - 1
    original = torch.rand(2, 3, 32, 32) * 2 - 1
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., 8:20, 10:24] = 1.0
    out = build_network("local_enhancer", width=4)(transformed, original, mask)
    assert torch.equal(out[..., 0:8, :], original[..., 0:8, :])
    assert torch.allclose(out[..., 8:20, 10:24], transformed[..., 8:20, 10:24])
