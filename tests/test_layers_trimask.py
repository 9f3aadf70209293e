"""Layer maths and trimask handling on plain tensors."""

from __future__ import annotations

import pytest
import torch


def _synthetic(seed=0, n=3, h=24, w=32):
    gen = torch.Generator().manual_seed(seed)
    fg = torch.rand(n, h, w, 3, generator=gen)
    bg = torch.rand(n, h, w, 3, generator=gen)
    alpha = torch.zeros(n, h, w)
    alpha[:, 6:18, 8:24] = 1.0
    alpha[:, 4:6, 8:24] = torch.rand(n, 2, 16, generator=gen)  # a soft edge
    alpha[:, 18:22, 4:28] = 0.4  # a shadow-like translucent region
    frames = alpha.unsqueeze(-1) * fg + (1 - alpha.unsqueeze(-1)) * bg
    return frames, fg, bg, alpha


def test_recover_foreground_reconstructs_the_input(core):
    layers = core.layers
    frames, fg, bg, alpha = _synthetic()
    recovered = layers.recover_foreground(frames, bg, alpha, eps=1e-3)
    inside = alpha >= 0.999
    assert (recovered[inside] - fg[inside]).abs().max() < 2e-3
    assert torch.equal(recovered[alpha < 1 / 255], torch.zeros_like(recovered[alpha < 1 / 255]))
    assert core.metrics.region_psnr(layers.composite(recovered, alpha, bg), frames) >= 40.0
    rgba = layers.rgba(recovered, alpha)
    assert rgba.shape == (3, 24, 32, 4) and torch.equal(rgba[..., 3], alpha)  # straight alpha


def test_composite_gain_and_background_fit(core):
    layers = core.layers
    frames, fg, bg, alpha = _synthetic()
    assert torch.allclose(layers.composite(fg, alpha, bg), frames, atol=1e-6)
    assert torch.equal(layers.composite(fg, alpha, bg, alpha_gain=0.0), bg)
    assert torch.allclose(layers.composite(fg, alpha, bg, alpha_gain=10.0)[alpha > 0.1], fg[alpha > 0.1])
    wide = torch.rand(2, 10, 40, 3)
    fitted = layers.fit_background(wide, 24, 32, frames=5, loop=True)
    assert fitted.shape == (5, 24, 32, 3)
    assert torch.equal(fitted[2], fitted[0]) and torch.equal(fitted[3], fitted[1])
    held = layers.fit_background(wide, 24, 32, frames=5, loop=False)
    assert torch.equal(held[4], held[1])
    still = layers.fit_background(torch.rand(1, 50, 50, 3), 24, 32, frames=4)
    assert still.shape == (4, 24, 32, 3) and torch.equal(still[0], still[3])


def test_alpha_from_decoded_averages_and_clamps(core):
    decoded = torch.tensor([[[[1.2, 0.9, 0.9], [-0.3, 0.0, 0.0]]]])
    alpha = core.layers.alpha_from_decoded(decoded)
    assert alpha.shape == (1, 1, 2) and alpha[0, 0, 0] == 1.0 and alpha[0, 0, 1] == 0.0


def test_trimask_values_dilation_and_keep(core):
    tri = core.trimask
    obj = torch.zeros(1, 20, 20, dtype=torch.bool)
    obj[0, 8:12, 8:12] = True
    keep = torch.zeros(1, 20, 20, dtype=torch.bool)
    keep[0, 0:4, 0:4] = True
    keep[0, 9, 9] = True  # overlapping the object: removal wins
    mask = tri.build_trimask(obj, keep, dilation_px=2)
    assert set(mask.unique().tolist()) == {0.0, 0.5, 1.0}
    assert mask[0, 6:14, 6:14].eq(1.0).all() and mask[0, 5, 5] == 0.5
    assert mask[0, 0:4, 0:4].eq(0.0).all() and mask[0, 9, 9] == 1.0
    assert tri.dilation_for_size(480, 832) == 11 and tri.dilation_for_size(64, 112) == 1
    assert tri.dilation_for_size(960, 1664) == 22


@pytest.mark.parametrize("frames,expected", [(1, 1), (2, 5), (5, 5), (6, 9), (81, 81), (85, 85), (200, 201)])
def test_padded_length_is_4n_plus_1(core, frames, expected):
    assert core.frame_geometry.padded_length(frames) == expected


def test_mirror_pad_keeps_every_frame_and_reflects(core):
    video = torch.arange(6).float().view(6, 1)
    padded = core.frame_geometry.mirror_pad_time(video, 9)
    assert padded.flatten().tolist() == [0, 1, 2, 3, 4, 5, 4, 3, 2]
    assert core.frame_geometry.mirror_pad_time(torch.ones(1, 2), 5).shape == (5, 2)
    assert core.frame_geometry.mirror_pad_time(torch.arange(2.).view(2, 1), 5).flatten().tolist() == [0, 1, 0, 1, 0]


def test_pack_trimask_repeats_frame_zero_and_groups_by_four(core):
    trimask = torch.arange(9).float().view(9, 1, 1).expand(9, 2, 3)
    packed = core.trimask.pack_trimask(trimask)
    assert packed.shape == (1, 4, 3, 2, 3)
    assert packed[0, :, 0, 0, 0].tolist() == [0, 0, 0, 0]  # frame 0 ×3, then frame 0
    assert packed[0, :, 1, 0, 0].tolist() == [1, 2, 3, 4]
    assert packed[0, :, 2, 0, 0].tolist() == [5, 6, 7, 8]
    with pytest.raises(ValueError, match="4n\\+1"):
        core.trimask.pack_trimask(torch.zeros(6, 2, 2))


def test_dilation_grows_each_frame_by_a_square_in_bounded_pieces(core):
    tm = core.trimask
    frames = 2 * tm.CHUNK_FRAMES + 3  # several pieces and a short last one
    mask = torch.zeros(frames, 12, 12, dtype=torch.bool)
    for t in range(frames):
        mask[t, t % 10 + 1, (3 * t) % 10 + 1] = True  # one pixel, somewhere else in every frame
    grown = tm.dilate(mask, 1)
    assert grown.dtype == torch.bool and grown.shape == mask.shape
    for t in range(frames):
        y, x = t % 10 + 1, (3 * t) % 10 + 1
        expected = torch.zeros(12, 12, dtype=torch.bool)
        expected[y - 1:y + 2, x - 1:x + 2] = True
        assert torch.equal(grown[t], expected), t
    assert torch.equal(tm.dilate(mask, 0), mask)
