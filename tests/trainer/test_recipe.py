"""The `edit` recipe's components, each on its own (trainer/edit_stage.py puts them together)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from diat_studio.core.alignment import CanonicalTemplate
from diat_studio.core.regions import Polygon, RegionKind
from trainer.augment import DiffAugment, blur, colour, cutout, translation
from trainer.data import inner_mouth_masks, lip_ring_masks, region_masks, to_tensor
from trainer.edit_stage import region_patches
from trainer.ema import WeightAverage
from trainer.glasses import GlassesStyle, add_glasses_batch, draw_glasses
from trainer.losses import (
    colour_detail,
    colour_drift,
    drawn_pixels_penalty,
    edit_magnitude,
    green_penalty,
    hidden_detail_penalty,
    hinge_discriminator,
    hinge_generator,
    lab_a,
    lab_ab,
    lip_colour_penalty,
    mask_edge_penalty,
    opened_lips_penalty,
    outside_mask_penalty,
    r1_penalty,
    unchanged_penalty,
)
from trainer.networks import GATE_START, DeltaLowPass, ResidualEditor, SpectralDiscriminator


def faces(n: int = 4, size: int = 64, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(-1, 1, (n, 3, size, size)).astype(np.float32))


# -- the residual editor ---------------------------------------------------------------------------------


def test_untrained_editor_returns_the_photo_exactly() -> None:
    editor = ResidualEditor(width=4)
    x = faces()
    assert torch.equal(editor(x), x)
    assert torch.count_nonzero(editor.delta(x)) == 0


def test_editor_learns_an_edit_from_the_zero_start() -> None:
    """The zeroed last layer must not block learning: gradients reach it and the edit grows."""
    torch.manual_seed(0)
    editor = ResidualEditor(width=4)
    optimiser = torch.optim.Adam(editor.parameters(), lr=1e-2)
    x = faces(2, 32) * 0.5
    losses = []
    for _ in range(60):
        loss = (editor(x) - (x + 0.3)).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(0.3, abs=1e-6)
    assert losses[-1] < 0.5 * losses[0]
    assert editor.delta(x).mean().item() > 0.1


def test_delta_lowpass_removes_the_pixel_pattern_and_keeps_smooth_edits() -> None:
    """A checkerboard (the period-2 lattice of an editor) is nearly gone; a broad edit passes; mean kept."""
    lowpass = DeltaLowPass(0.7)
    size = 32
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    checker = ((yy + xx) % 2 * 2 - 1).float().expand(1, 3, size, size) * 0.2
    broad = torch.exp(-(((yy - 16.0) ** 2 + (xx - 16.0) ** 2) / (2 * 6.0**2))).expand(1, 3, size, size) * 0.5
    assert lowpass(checker).abs().mean() < 0.1 * checker.abs().mean()
    assert (lowpass(broad) - broad).abs().max() < 0.02 * broad.max()
    constant = torch.full((1, 3, size, size), 0.25)
    assert torch.allclose(lowpass(constant), constant, atol=1e-6)  # reflect padding: no dark border
    assert lowpass(checker).shape == checker.shape
    with pytest.raises(ValueError, match="σ > 0"):
        DeltaLowPass(0.0)


def test_editor_with_lowpass_shares_weights_with_one_without() -> None:
    """The low-pass is not a weight: a run without it can be continued with it (and back)."""
    torch.manual_seed(0)
    plain = ResidualEditor(width=4)
    nn.init.normal_(plain.net[-1].weight, std=0.05)
    smoothed = ResidualEditor(width=4, delta_lowpass=0.7)
    smoothed.load_state_dict(plain.state_dict())  # strict: the same keys
    assert set(smoothed.state_dict()) == set(plain.state_dict())
    x = faces(1, 32)
    with torch.no_grad():
        raw, low = plain.delta(x), smoothed.delta(x)
        assert torch.allclose(low, DeltaLowPass(0.7)(raw), atol=1e-6)
        assert torch.allclose(smoothed(x), torch.clamp(x + low, -1, 1))
    assert torch.equal(ResidualEditor(width=4, delta_lowpass=0.7)(x), x)  # still starts at the identity


def fine_detail(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute 4-neighbour Laplacian: the image's detail at the pixel scale."""
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return lap.abs().mean()


def test_a_new_detail_gate_is_nearly_closed_and_open_it_takes_the_fine_detail_away() -> None:
    """A low-passed Δ cannot remove the photo's own fine structure (teeth, rims); the gate can."""
    x = faces(2, 64)
    editor = ResidualEditor(width=4, delta_lowpass=1.15, detail_gate=1.5)
    with torch.no_grad():
        closed = editor(x)
        # sigmoid(GATE_START) of the detail: well under 2% of what a full gate would take
        assert (closed - x).abs().max() < 0.02 * (x - DeltaLowPass(1.5)(x)).abs().max() + 1e-6
        assert fine_detail(closed) > 0.97 * fine_detail(x)
        nn.init.constant_(editor.detail_gate.head.bias, 12.0)  # fully open
        opened = editor(x)
    assert torch.allclose(opened, torch.clamp(DeltaLowPass(1.5)(x), -1, 1), atol=1e-4)
    assert fine_detail(opened) < 0.2 * fine_detail(x)
    assert torch.sigmoid(torch.tensor(GATE_START)) < 0.02


def test_an_editor_without_a_gate_continues_with_one() -> None:
    """Its weights load (the gate keeps its start) and it edits as before, give or take the closed gate."""
    torch.manual_seed(0)
    trained = ResidualEditor(width=4, delta_lowpass=1.15)
    nn.init.normal_(trained.net[-1].weight, std=0.05)
    gated = ResidualEditor(width=4, delta_lowpass=1.15, detail_gate=1.5)
    gated.load_state_dict(trained.state_dict())
    assert torch.equal(gated.detail_gate.head.bias, torch.full((1,), GATE_START))
    assert torch.count_nonzero(gated.detail_gate.head.weight) == 0
    x = faces(1, 32)
    with torch.no_grad():
        assert (gated(x) - trained(x)).abs().max() < 0.05
    with pytest.raises(RuntimeError):  # other mismatches still fail loudly
        gated.load_state_dict({"net.0.weight": torch.zeros(1)})


def test_the_gate_learns_to_open_where_the_detail_must_go() -> None:
    torch.manual_seed(0)
    editor = ResidualEditor(width=4, delta_lowpass=1.15, detail_gate=1.5)
    optimiser = torch.optim.Adam(editor.parameters(), lr=1e-2)
    x = faces(2, 32)
    target = DeltaLowPass(1.5)(x)  # the same faces without their fine detail
    losses = []
    for _ in range(60):
        loss = (editor(x) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    with torch.no_grad():
        assert editor.detail_gate.gate(editor.net[:-1](x)).mean() > 0.5


# -- D: spectral norm, hinge, R1 ---------------------------------------------------------------------------


def test_spectral_discriminator_bounds_its_layers() -> None:
    torch.manual_seed(0)
    d = SpectralDiscriminator(width=4).train()
    x = faces(2, 64)
    for _ in range(20):  # power iterations run in training-mode forwards
        logits, features = d(x)
    assert logits.shape == (2,) and len(features) == 5
    for layer in d.layers:
        weight = layer[0].weight  # the normalised weight
        sigma = torch.linalg.matrix_norm(weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_spectral_discriminator_on_region_patches() -> None:
    logits, features = SpectralDiscriminator(width=4, blocks=3)(faces(3, 32)[:, :, :16, :24])
    assert logits.shape == (3,) and features[-1].shape[2:] == (2, 3)


def test_hinge_losses() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert hinge_discriminator(real, fake).item() == pytest.approx((0 + 0.5) / 2 + (0 + 1.0) / 2)
    assert hinge_generator(fake).item() == pytest.approx(1.0)


def test_r1_penalty_of_a_linear_critic_is_half_its_squared_norm() -> None:
    weight = torch.randn(3 * 8 * 8)
    x = faces(5, 8).requires_grad_(True)
    logits = x.flatten(1) @ weight
    assert r1_penalty(logits, x).item() == pytest.approx(0.5 * weight.pow(2).sum().item(), rel=1e-5)


# -- the edit's regularisers -----------------------------------------------------------------------------


def test_colour_drift_penalises_tints_not_brightness() -> None:
    brighter = torch.full((2, 3, 64, 64), 0.2)
    violet = torch.zeros(2, 3, 64, 64)
    violet[:, 0] = violet[:, 2] = 0.2
    assert colour_drift(brighter).item() == pytest.approx(0.0, abs=1e-7)
    assert colour_drift(violet).item() > 0.05
    # a small local change (lipstick-sized) drifts far less than a face-wide tint of the same strength
    local = torch.zeros(2, 3, 64, 64)
    local[:, 0, 40:44, 28:36] = 0.2
    assert colour_drift(local).item() < 0.05 * colour_drift(violet).item()


def test_colour_detail_penalises_coloured_specks_not_sharp_grey_edges_or_smooth_tints() -> None:
    """Green specks on teeth count; the same pattern in grey (teeth edges, a lip's line) and a smooth
    colour ramp (lipstick fading in) hardly do; with a mask only the specks inside the region count."""
    grey = torch.zeros(1, 3, 32, 32)
    grey[:, :, ::2, ::2] = 0.5
    green = torch.zeros(1, 3, 32, 32)
    green[:, 1, ::2, ::2] = 0.5
    ramp = torch.zeros(1, 3, 32, 32)
    ramp[:, 0] = torch.linspace(0.0, 0.5, 32)
    assert colour_detail(grey).item() == pytest.approx(0.0, abs=1e-7)
    assert colour_detail(green).item() > 0.05
    assert colour_detail(ramp).item() < 0.05 * colour_detail(green).item()
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 16:] = 1.0
    outside = green.clone()
    outside[:, :, 16:] = 0.0
    assert colour_detail(outside, mask).item() < 0.1 * colour_detail(green, mask).item()


def test_green_penalty_counts_a_mouth_greener_than_red_beyond_the_photos_own_green() -> None:
    """Mint-green teeth count; white teeth, red lips and grey shadow do not; a green-lit source keeps its
    own green; only pixels inside the region count."""

    def rgb(r: float, g: float, b: float) -> torch.Tensor:
        return torch.tensor([r, g, b]).view(1, 3, 1, 1).expand(1, 3, 16, 16).clone()

    lips, mask = rgb(0.3, -0.4, -0.3), torch.ones(1, 1, 16, 16)
    for natural in (rgb(0.8, 0.8, 0.7), lips, rgb(-0.5, -0.5, -0.5)):  # teeth, lips, shadow
        assert green_penalty(natural, lips, mask).item() == 0.0
    mint = rgb(0.5, 0.7, 0.6)
    assert green_penalty(mint, lips, mask).item() == pytest.approx(0.2 - 4 / 127.5, abs=1e-6)
    assert green_penalty(mint, rgb(0.0, 0.2, 0.0), mask).item() == 0.0  # as green as its green-lit source
    half = torch.zeros(1, 1, 16, 16)
    half[..., :8] = 1.0
    outside = mint.clone()
    outside[..., :8] = lips[..., :8]
    assert green_penalty(outside, lips, half).item() == 0.0


def test_mask_edge_penalty_counts_the_edit_only_where_the_mask_falls_off() -> None:
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1.0
    mask[:, :, 6:8, 6:26] = mask[:, :, 24:26, 6:26] = 0.5  # the feather: top and bottom rims
    inside = torch.zeros(1, 3, 32, 32)
    inside[:, :, 10:22, 10:22] = 0.4  # an edit finished inside the region
    at_edge = torch.zeros(1, 3, 32, 32)
    at_edge[:, :, 24:26, 6:26] = 0.4  # a line along the rim (the dotted chin of the close-mouth grids)
    assert mask_edge_penalty(inside, mask).item() == 0.0
    assert mask_edge_penalty(at_edge, mask).item() == pytest.approx(0.2, rel=1e-5)  # half the rim, |Δ| 0.4
    assert mask_edge_penalty(at_edge, torch.ones_like(mask)).item() == 0.0  # no falloff, nothing to count


def test_hidden_detail_penalty_counts_sharp_detail_where_it_must_go() -> None:
    """Teeth-like stripes (sharp, strong) inside the weight count; the same stripes outside it, a smooth
    shading and a lip's faint grain (below the floor) do not."""
    weight = torch.zeros(1, 1, 32, 32)
    weight[:, :, 12:20, 8:24] = 1.0
    teeth = torch.zeros(1, 3, 32, 32)
    teeth[:, :, 12:20, 8:24:3] = 0.8  # pale columns with dark gaps, 1 px wide
    smooth = torch.linspace(-0.5, 0.5, 32).expand(1, 3, 32, 32).clone()
    grain = teeth * 0.05
    outside = torch.roll(teeth, 12, dims=2)
    assert hidden_detail_penalty(teeth, weight).item() > 0.1
    assert hidden_detail_penalty(smooth, weight).item() == 0.0
    assert hidden_detail_penalty(grain, weight).item() == 0.0
    assert hidden_detail_penalty(outside, weight).item() < 0.01
    assert hidden_detail_penalty(teeth, torch.zeros_like(weight)).item() == 0.0  # nothing hidden: no term
    # the gradient asks for the stripes to fade
    stripes = teeth.clone().requires_grad_(True)
    hidden_detail_penalty(stripes, weight).backward()
    assert stripes.grad is not None and (stripes.grad[:, :, 12:20, 8:24:3] > 0).float().mean() > 0.9


def test_inner_mouth_mask_covers_what_lies_between_the_lips(astronaut, astronaut_face) -> None:
    """On a real smile (the astronaut's teeth show) the mask covers the inner lips' hull, a little more,
    and nothing near the eyes; a mouth whose inner lips meet hides nothing."""
    from diat_studio.core.alignment import align_face

    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)
    mask = inner_mouth_masks(marks[None], 128)[0, 0]
    inner = marks[60:68]
    centre = np.round(inner.mean(0)).astype(int)
    assert mask[centre[1], centre[0]] == 1.0
    assert mask.sum() > Polygon.from_array(inner).fill(128, 128).sum()  # grown past the landmarks
    rows, cols = np.nonzero(mask)
    assert rows.min() >= marks[48:68, 1].min() - 4 and rows.max() <= marks[48:68, 1].max() + 4
    assert cols.min() >= marks[48:68, 0].min() - 4 and cols.max() <= marks[48:68, 0].max() + 4
    closed = marks.copy()
    closed[61:64] = closed[[67, 66, 65]]  # the upper inner lip down on the lower one
    assert inner_mouth_masks(closed[None], 128).sum() == 0.0


def test_lab_a_and_b_are_opencvs_a_star_and_b_star() -> None:
    import cv2

    image = np.random.default_rng(3).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    reference = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 127.5 - 1.0
    a, b = lab_ab(tensor)
    assert np.abs(a[0, 0].numpy() - reference[..., 1]).max() < 0.5
    assert np.abs(b[0, 0].numpy() - reference[..., 2]).max() < 0.5
    assert torch.equal(lab_a(tensor), a)


def test_lip_colour_penalty_counts_grey_where_the_teeth_were_not_red_lips_or_pale_lips() -> None:
    """Where the teeth were, an olive-grey closed mouth falls short of the photo's own lips' redness and
    counts; lips as red as the source's, or a little paler (within the margin), do not; pale lips set a
    low bar of their own; a face without a hidden region or lips counts nothing."""

    def colour(r: int, g: int, b: int) -> torch.Tensor:
        return (torch.tensor([r, g, b]).view(1, 3, 1, 1).float() / 127.5 - 1.0).expand(1, 3, 16, 16).clone()

    hidden = torch.zeros(1, 1, 16, 16)
    hidden[..., 6:10, 4:12] = 1.0
    lips = torch.zeros(1, 1, 16, 16)
    lips[..., 3:6, 4:12] = lips[..., 10:13, 4:12] = 1.0
    red_lips, olive = colour(178, 110, 110), colour(136, 124, 95)
    closed = red_lips.clone()
    closed[..., 6:10, 4:12] = olive[..., 6:10, 4:12]
    assert lip_colour_penalty(red_lips, red_lips, hidden, lips).item() == 0.0
    assert lip_colour_penalty(closed, red_lips, hidden, lips).item() > 0.15  # ~ (a* 30 − 8 − 2) / 100
    paler = colour(178, 122, 118)  # a few a* units less red than the lips
    assert 0 < float(lab_a(red_lips)[0, 0, 0, 0] - lab_a(paler)[0, 0, 0, 0]) < 8
    assert lip_colour_penalty(paler, red_lips, hidden, lips).item() == 0.0
    pale_lips = colour(150, 135, 115)  # nearly as un-red as the olive: its own low bar
    assert lip_colour_penalty(olive, pale_lips, hidden, lips).item() == 0.0
    assert lip_colour_penalty(closed, red_lips, torch.zeros_like(hidden), lips).item() == 0.0
    assert lip_colour_penalty(closed, red_lips, hidden, torch.zeros_like(lips)).item() == 0.0


def test_opened_lips_penalty_counts_lips_that_lost_their_red_wherever_they_went() -> None:
    """Opening a mouth: lips as red as the source's count nothing even where they moved (the lower lip
    lower, teeth between); the same mouth opened into pale pink counts; a few very red pixels cannot pay
    for pale lips (every rank must hold); lips as red but bluer (their warmth, b*, lost) count; pale
    source lips set a low bar of their own; no lips, nothing."""

    def face(lip: tuple[int, int, int], rows: tuple[slice, ...], teeth: slice | None = None) -> torch.Tensor:
        image = (torch.tensor([200, 160, 140]).view(1, 3, 1, 1).float() / 127.5 - 1.0).expand(1, 3, 24, 24)
        image = image.clone()
        for band in rows:
            image[..., band, 6:18] = torch.tensor(lip).view(1, 3, 1, 1).float() / 127.5 - 1.0
        if teeth is not None:
            image[..., teeth, 7:17] = 235 / 127.5 - 1.0
        return image

    lips = torch.zeros(1, 1, 24, 24)
    lips[..., 9:12, 6:18] = 1.0
    region = torch.zeros(1, 1, 24, 24)
    region[..., 4:22, 3:21] = 1.0
    red, pale = (178, 90, 100), (205, 160, 160)
    closed = face(red, (slice(9, 12),))
    opened = face(red, (slice(8, 10), slice(14, 16)), teeth=slice(10, 14))  # lower lip moved down
    assert opened_lips_penalty(closed, closed, lips, region).item() == 0.0
    assert opened_lips_penalty(opened, closed, lips, region).item() == 0.0
    paled = face(pale, (slice(8, 10), slice(14, 16)), teeth=slice(10, 14))
    assert opened_lips_penalty(paled, closed, lips, region).item() > 0.1
    speck = paled.clone()
    speck[..., 12, 3:6] = torch.tensor([255, 0, 60]).view(1, 3, 1).float() / 127.5 - 1.0
    assert opened_lips_penalty(speck, closed, lips, region).item() > 0.08
    cooler = (178, 90, 135)  # as red (a*), bluer: the warmth lost, not the redness
    (a_red, b_red), (a_cool, b_cool) = (
        [float(c[0, 0, 10, 10]) for c in lab_ab(face(colour, (slice(9, 12),)))] for colour in (red, cooler)
    )
    assert a_cool > a_red - 8 and b_cool < b_red - 4 - 5
    cooled = face(cooler, (slice(8, 10), slice(14, 16)), teeth=slice(10, 14))
    assert opened_lips_penalty(cooled, closed, lips, region).item() > 0.05
    assert opened_lips_penalty(cooled, closed, lips, region, warmth_margin=100).item() == 0.0
    pale_source = face(pale, (slice(9, 12),))
    assert opened_lips_penalty(paled, pale_source, lips, region).item() == 0.0
    assert opened_lips_penalty(paled, closed, torch.zeros_like(lips), region).item() == 0.0
    paled.requires_grad_(True)
    opened_lips_penalty(paled, closed, lips, region).backward()
    assert paled.grad is not None and paled.grad.abs().sum() > 0  # it can pull the lips back to red


def test_lip_ring_masks_are_the_lips_around_the_hidden_region(astronaut, astronaut_face) -> None:
    from diat_studio.core.alignment import align_face

    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)[None]
    inner = inner_mouth_masks(marks, 128)
    rings = lip_ring_masks(marks, 128, inner)
    assert rings.sum() > 20 and not (rings * inner).any()
    outer = Polygon.from_array(marks[0, 48:60]).fill(128, 128)
    assert rings[0, 0].sum() + (inner[0, 0] * outer).sum() == pytest.approx(outer.sum())


def test_outside_mask_penalty_counts_only_the_raw_edit_where_the_mask_is_zero() -> None:
    mask = torch.zeros(1, 1, 32, 32)
    mask[:, :, 8:24, 8:24] = 1.0
    inside = torch.zeros(1, 3, 32, 32)
    inside[:, :, 8:24, 8:24] = 0.5  # the edit itself, however strong, is not counted
    assert outside_mask_penalty(inside, mask).item() == 0.0
    pattern = inside.clone()
    pattern[:, :, :8] = 0.3  # the raw Δ the composite throws away above the region
    outside_area = 32 * 32 - 16 * 16
    assert outside_mask_penalty(pattern, mask).item() == pytest.approx(0.3 * 8 * 32 / outside_area, rel=1e-5)
    assert outside_mask_penalty(pattern, torch.ones_like(mask)).item() == 0.0  # a global edit: no outside


def test_outside_mask_penalty_drives_the_raw_edit_outside_to_zero_and_keeps_the_edit() -> None:
    """Nothing else reaches Δ where m = 0 (x + m ⊙ Δ): without the term a raw pattern there stays."""

    def train(outside_weight: float) -> torch.Tensor:
        torch.manual_seed(0)
        editor = ResidualEditor(width=4)
        with torch.no_grad():  # a trained editor: its raw Δ is large everywhere, as the mouth editors' was
            for parameter in editor.parameters():
                parameter.add_(0.3 * torch.randn_like(parameter))
        optimiser = torch.optim.Adam(editor.parameters(), lr=1e-2)
        for _ in range(200):
            raw = editor.delta(x)
            edited = x + mask * raw
            loss = (edited - target).abs().mean() + outside_weight * outside_mask_penalty(raw, mask)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        return editor.delta(x).detach()

    x = faces(2, 32)
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 10:22, 10:22] = 1.0
    target = x.clone()
    target[:, :, 10:22, 10:22] += 0.5
    without, with_term = train(0.0), train(1.0)
    assert outside_mask_penalty(without, mask).item() > 0.1
    assert outside_mask_penalty(with_term, mask).item() < 0.2 * outside_mask_penalty(without, mask).item()
    assert (with_term[:, :, 12:20, 12:20] - 0.5).abs().mean().item() < 0.1  # the edit is still made


def test_edit_magnitude() -> None:
    assert edit_magnitude(torch.zeros(1, 3, 8, 8)).item() == 0.0
    flat, noisy = torch.full((1, 3, 8, 8), 0.1), faces(1, 8) * 0.1
    assert edit_magnitude(flat).item() == pytest.approx(0.1)
    assert edit_magnitude(noisy).item() > edit_magnitude(flat).item()


# -- DiffAugment ---------------------------------------------------------------------------------------------


def test_unchanged_penalty_is_the_mean_edit_inside_the_region() -> None:
    assert unchanged_penalty(torch.zeros(2, 3, 8, 8)).item() == 0.0
    assert unchanged_penalty(torch.full((2, 3, 8, 8), -0.2)).item() == pytest.approx(0.2)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:4, 2:6] = 1.0
    delta = mask * 0.3  # a local edit's Δ is already masked: its mean over the region, not the crop
    assert unchanged_penalty(delta, mask).item() == pytest.approx(0.3)
    assert unchanged_penalty(delta).item() == pytest.approx(0.3 * 8 / 64)
    # it trains an editor that edits everything towards leaving such faces alone
    torch.manual_seed(0)
    editor = ResidualEditor(width=4)
    optimiser = torch.optim.Adam(editor.parameters(), lr=1e-2)
    x = faces(2, 16) * 0.5
    for _ in range(30):  # first teach it a face-wide edit
        optimiser.zero_grad()
        (editor(x) - (x + 0.3)).abs().mean().backward()
        optimiser.step()
    before = unchanged_penalty(editor.delta(x)).item()
    for _ in range(30):
        optimiser.zero_grad()
        unchanged_penalty(editor.delta(x)).backward()
        optimiser.step()
    assert before > 0.1 and unchanged_penalty(editor.delta(x)).item() < 0.5 * before


def test_diffaugment_is_differentiable_and_reproducible() -> None:
    x = faces(4).requires_grad_(True)
    a = DiffAugment(seed=3)(x)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.equal(DiffAugment(seed=3)(x.detach()), a.detach())
    assert not torch.equal(DiffAugment(seed=4)(x.detach()), a.detach())
    augment = DiffAugment(seed=3)
    state = augment.state()
    first = augment(x.detach())
    augment.restore(state)
    assert torch.equal(augment(x.detach()), first)
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        DiffAugment(["rotate"])


def test_translation_moves_content_and_cutout_blanks_a_square() -> None:
    x = torch.zeros(1, 1, 32, 32)
    x[0, 0, 16, 16] = 1.0
    generator = torch.Generator().manual_seed(0)
    shifted = [translation(x, 0.125, generator) for _ in range(8)]
    positions = {tuple(torch.nonzero(s[0, 0])[0].tolist()) for s in shifted if s.sum() > 0}
    assert len(positions) > 1 and all(abs(r - 16) <= 4 and abs(c - 16) <= 4 for r, c in positions)
    ones = torch.ones(3, 2, 32, 32)
    cut = cutout(ones, 0.25, torch.Generator().manual_seed(0))
    blanked = (cut[:, 0] == 0).sum(dim=(1, 2))
    assert torch.all(blanked > 0) and torch.all(blanked <= 64)  # at most an 8×8 square
    assert torch.equal(cut[:, 0] == 0, cut[:, 1] == 0)  # the same square in every channel


def test_colour_augmentation_changes_statistics_per_sample() -> None:
    x = faces(8) * 0.5
    out = colour(x, torch.Generator().manual_seed(0))
    means = (out - x).mean(dim=(1, 2, 3))
    assert means.std() > 0.05


def test_blur_augmentation_softens_some_faces_and_leaves_the_others_exactly() -> None:
    """trainer.augment.blur (for classifiers): about half the faces lose their fine detail, the others are
    untouched, and the mean colour of every face stays."""
    x = faces(64)
    out = blur(x, sigma_max=3.0, probability=0.5, generator=torch.Generator().manual_seed(0))
    same = (out == x).flatten(1).all(dim=1)
    assert 16 < int(same.sum()) < 48
    detail = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean(dim=(1, 2, 3))  # noqa: E731
    assert (detail(out)[~same] <= detail(x)[~same]).all()
    assert detail(out)[~same].mean() < 0.5 * detail(x)[~same].mean()
    assert torch.allclose(out.mean(dim=(1, 2, 3)), x.mean(dim=(1, 2, 3)), atol=0.02)
    assert torch.equal(blur(x, probability=0.0), x)
    with pytest.raises(ValueError, match="unknown augmentation 'sharpen'"):
        DiffAugment(["blur", "sharpen"])
    assert DiffAugment(["colour", "blur"]).policies == ["blur", "colour"]  # blur first, then colour


# -- the weight average --------------------------------------------------------------------------------------


def test_weight_average_follows_the_network_with_a_ramp() -> None:
    model = nn.Linear(2, 1)
    nn.init.zeros_(model.weight)
    average = WeightAverage(model, decay=0.9)
    with torch.no_grad():
        model.weight.fill_(1.0)
    average.update(model)  # ramped decay min(0.9, 2/11)
    assert average.average.weight[0, 0].item() == pytest.approx(1 - 2 / 11)
    for _ in range(200):
        average.update(model)
    assert average.average.weight[0, 0].item() == pytest.approx(1.0, abs=1e-6)
    assert not average.average.weight.requires_grad
    copy = WeightAverage(nn.Linear(2, 1), decay=0.9)
    copy.load_state_dict(average.state_dict())
    assert copy.updates == 201 and torch.equal(copy.average.weight, average.average.weight)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, decay=1.0)
    # a network that starts trained: no ramp, the average moves at the decay from the first update
    nn.init.zeros_(model.weight)
    trained = WeightAverage(model, decay=0.9, ramp=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    trained.update(model)
    assert trained.average.weight[0, 0].item() == pytest.approx(0.1)


# -- region patches ------------------------------------------------------------------------------------------


def test_region_patch_is_centred_on_the_region() -> None:
    template = CanonicalTemplate(size=128)
    marks = torch.from_numpy(template.points().astype(np.float32))[None]
    image = torch.zeros(1, 3, 128, 128)
    cx, cy = (round(v) for v in marks[0, 48:68].mean(0).tolist())
    image[0, :, cy - 2 : cy + 3, cx - 2 : cx + 3] = 1.0  # a bright dot on the mouth
    patch = region_patches(image, marks, RegionKind.MOUTH)
    assert patch.shape == (1, 3, 32, 48)
    peak = np.unravel_index(int(patch[0, 0].argmax()), (32, 48))
    assert abs(peak[0] - 16) <= 2 and abs(peak[1] - 24) <= 2
    assert region_patches(image[:, :, :64, :64], marks / 2, RegionKind.EYES).shape == (1, 3, 12, 32)


def test_a_scaled_region_box_holds_the_whole_mouth_mask(astronaut, astronaut_face) -> None:
    """At scale 1 the mouth patch ends where the mouth's soft mask does (its rim, where a local edit
    blends into the photo, is cut off: the region D never judged it); at 1.6 the whole mask is inside,
    with skin around it, at the same resolution."""
    from diat_studio.core.alignment import align_face

    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)
    mask = torch.from_numpy(region_masks(marks[None], RegionKind.MOUTH, 128, 0.15)).expand(1, 3, 128, 128)
    landmarks = torch.from_numpy(marks.astype(np.float32))[None]
    cut = region_patches(mask, landmarks, RegionKind.MOUTH)[0, 0]
    whole = region_patches(mask, landmarks, RegionKind.MOUTH, box_scale=1.6)[0, 0]
    assert whole.shape == (round(32 * 1.6), round(48 * 1.6))  # same pixels per eye distance
    rim = lambda patch: torch.cat([patch[0], patch[-1], patch[:, 0], patch[:, -1]])  # noqa: E731
    assert rim(cut).max() > 0.1  # the mask goes on past the patch
    assert rim(whole).max() == 0.0
    iod = float(np.hypot(*(marks[42:48].mean(0) - marks[36:42].mean(0))))
    crop_pixels = (1.5 * 1.6 * iod / whole.shape[1]) * (1.0 * 1.6 * iod / whole.shape[0])  # per patch pixel
    assert float(whole.sum()) * crop_pixels == pytest.approx(float(mask[0, 0].sum()), rel=0.03)  # all of it


# -- synthetic glasses ---------------------------------------------------------------------------------


def test_glasses_are_drawn_over_the_eyes_only(astronaut, astronaut_face) -> None:
    from diat_studio.core.alignment import align_face

    template = CanonicalTemplate(size=128)
    aligned = align_face(astronaut, astronaut_face.landmarks, template)
    marks = aligned.to_crop(astronaut_face.landmarks)
    style = GlassesStyle("oval", 0.45, 0.7, 2, (20, 20, 20), 0.0, (0, 0, 0), 0.05)
    drawn, mask = draw_glasses(aligned.crop, marks, style)
    changed = np.abs(drawn.astype(int) - aligned.crop).max(axis=2) > 8
    assert changed.sum() > 150  # rims, bridge and arms are visible
    rows, cols = np.nonzero(changed)
    eyes = marks[36:48]
    assert rows.min() >= eyes[:, 1].min() - 20 and rows.max() <= eyes[:, 1].max() + 20
    assert cols.min() >= marks[0, 0] - 3 and cols.max() <= marks[16, 0] + 3
    assert not changed[int(marks[57, 1]) :].any()  # nothing below the lower lip
    assert mask.min() >= 0.0 and mask.max() <= 1.0 and mask[changed].mean() > 0.3
    # dark lenses darken the eyes themselves
    sunglasses = GlassesStyle("rect", 0.45, 0.7, 2, (20, 20, 20), 0.8, (40, 40, 40), 0.0)
    dark, lens = draw_glasses(aligned.crop, marks, sunglasses)
    inside = lens > 0.9
    assert inside.sum() > 200
    assert dark[inside].mean() < 0.6 * aligned.crop[inside].mean()


def test_light_tinted_lenses_come_in_colours_and_colour_the_eyes(astronaut, astronaut_face) -> None:
    from diat_studio.core.alignment import align_face

    rng = np.random.default_rng(1)
    styles = [GlassesStyle.random(rng) for _ in range(800)]
    tinted = [s for s in styles if 0 < s.lens_alpha <= 0.4]
    assert 0.15 < len(tinted) / len(styles) < 0.3
    hues = {s.tint for s in tinted if max(s.tint) - min(s.tint) >= 80}  # blue, violet, pink, amber
    assert len(hues) >= 4
    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)
    blue = GlassesStyle("oval", 0.45, 0.7, 1, (150, 150, 155), 0.35, (60, 90, 170), 0.0)
    drawn, lens = draw_glasses(aligned.crop, marks, blue)
    inside = lens > 0.9
    before, after = aligned.crop[inside].astype(float), drawn[inside].astype(float)
    bluer = (after[:, 2] - after[:, 0]).mean() - (before[:, 2] - before[:, 0]).mean()
    assert bluer > 30  # the eyes show through (not dark) but take the lens's colour
    assert after.mean() > 0.6 * before.mean()


def test_browline_frames_leave_the_lower_rims_bare_and_glare_lightens_the_lenses(
    astronaut, astronaut_face
) -> None:
    from diat_studio.core.alignment import align_face

    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)
    full = GlassesStyle("oval", 0.42, 0.7, 2, (20, 20, 20), 0.0, (0, 0, 0), 0.0)
    _, full_mask = draw_glasses(aligned.crop, marks, full)
    _, brow_mask = draw_glasses(aligned.crop, marks, dataclasses.replace(full, browline=True))
    below = int(np.ceil(marks[36:48, 1].max())) + 2  # under the eyes: only the lower rims are drawn there
    band = slice(below, below + 12)
    assert full_mask[band].sum() > 20 and brow_mask[band].sum() < 0.1 * full_mask[band].sum()
    assert brow_mask.sum() > 0.3 * full_mask.sum()  # the upper rims, bridge and arms stay
    glare = GlassesStyle("oval", 0.42, 0.7, 2, (20, 20, 20), 0.0, (0, 0, 0), 0.0, glare=0.3)
    shiny, shiny_mask = draw_glasses(aligned.crop, marks, glare)
    plain, _ = draw_glasses(aligned.crop, marks, full)
    lighter = shiny.astype(int).sum(2) - plain.astype(int).sum(2)
    assert lighter.min() >= -1 and (lighter > 15).sum() > 30  # a white streak, never darker
    assert shiny_mask[lighter > 15].min() > 0.02  # and the pair loss knows where it is


def test_drawn_pixels_penalty_weighs_a_rim_left_in_place(astronaut, astronaut_face) -> None:
    from diat_studio.core.alignment import align_face

    aligned = align_face(astronaut, astronaut_face.landmarks, CanonicalTemplate(size=128))
    marks = aligned.to_crop(astronaut_face.landmarks)
    drawn, mask = draw_glasses(
        aligned.crop, marks, GlassesStyle("rect", 0.42, 0.65, 2, (20, 20, 20), 0.0, (0, 0, 0), 0.0)
    )
    clean_t, drawn_t = to_tensor(aligned.crop[None]), to_tensor(drawn[None])
    drawn_mask = torch.from_numpy(mask)[None, None]
    region = torch.from_numpy(region_masks(marks[None], RegionKind.EYES, 128, 0.15, 0.45))
    left_in_place = drawn_pixels_penalty(drawn_t, clean_t, drawn_mask)
    region_l1 = ((drawn_t - clean_t).abs() * region).sum() / (region.sum() * 3)
    assert left_in_place > 5 * region_l1  # the region-wide L1 dilutes the rims; this does not
    assert drawn_pixels_penalty(clean_t, clean_t, drawn_mask) == 0
    # a change away from the drawing costs nothing here, one on it does
    elsewhere = clean_t.clone()
    elsewhere[..., 100:, :] += 0.5
    assert drawn_pixels_penalty(elsewhere, clean_t, drawn_mask) == 0
    on_rim = clean_t + 0.5 * (drawn_mask > 0.5)
    assert drawn_pixels_penalty(on_rim, clean_t, drawn_mask) > 0.2
    # each face counts alike: sunglasses taken off perfectly beside a rim left in place (ten times fewer
    # pixels) still cost half the rim's own penalty
    lenses = torch.zeros_like(drawn_mask)
    lenses[..., 30:70, 20:110] = 1.0
    batch = drawn_pixels_penalty(
        torch.cat([drawn_t, clean_t]), torch.cat([clean_t, clean_t]), torch.cat([drawn_mask, lenses])
    )
    assert batch == pytest.approx(left_in_place.item() / 2, rel=1e-5)


def test_random_glasses_vary_and_are_reproducible(astronaut, astronaut_face) -> None:
    from diat_studio.core.alignment import align_face

    template = CanonicalTemplate(size=64)
    aligned = align_face(astronaut, astronaut_face.landmarks, template)
    marks = aligned.to_crop(astronaut_face.landmarks)
    crops, landmarks = np.stack([aligned.crop] * 6), np.stack([marks] * 6)
    a, masks = add_glasses_batch(crops, landmarks, np.random.default_rng(5))
    b, _ = add_glasses_batch(crops, landmarks, np.random.default_rng(5))
    assert np.array_equal(a, b) and masks.shape == (6, 64, 64)
    assert len({img.tobytes() for img in a}) == 6
    assert np.array_equal(crops[0], aligned.crop)  # the inputs are not drawn on
