"""omnimatte_core.conditioning on plain tensors: mask handling, trimask packing, source restore."""

from __future__ import annotations

import torch


def test_working_mask_broadcasts_resizes_and_thresholds(core):
    cond = core.conditioning
    mask = torch.zeros(1, 40, 60)
    mask[0, 10:30, 20:40] = 1.0
    mask[0, 0:2, 0:2] = 0.3  # grey compression noise
    out = cond.working_mask(mask, frames=5, height=20, width=30, threshold=0.5)
    assert out.shape == (5, 20, 30) and out.dtype == torch.bool
    assert out[:, 5:15, 10:20].all() and out.sum() == 5 * 10 * 10


def test_latent_trimask_pools_to_the_latent_grid(core):
    cond = core.conditioning
    trimask = torch.full((9, 32, 48), 0.5)
    trimask[:, :16, :16] = 1.0
    trimask[:, 16:, 32:] = 0.0
    packed = cond.latent_trimask(trimask)
    assert packed.shape == (1, 4, 3, 4, 6)
    assert torch.all(packed[..., :2, :2] == 1.0) and torch.all(packed[..., 2:, 4:] == 0.0)
    assert torch.all(packed[..., :2, 2:4] == 0.5)
    edge = torch.full((9, 32, 48), 0.5)
    edge[:, :4, :4] = 1.0  # a quarter of one 8×8 cell
    assert cond.latent_trimask(edge)[0, 0, 0, 0, 0].item() == 0.625


def test_casper_inputs_pad_and_remember_the_source(core):
    cond = core.conditioning
    ramp = torch.linspace(0, 1, 40)  # smooth frames: the resize round trip below is then close
    video = (ramp[None, None, :, None] * torch.linspace(0.2, 1, 24)[None, :, None, None]
             * torch.linspace(0.5, 1, 6)[:, None, None, None]).expand(6, 24, 40, 3).clone()
    video[..., 1] = 1 - video[..., 1]
    mask = torch.zeros(6, 24, 40)
    mask[:, 8:16, 8:24] = 1
    keep = torch.zeros(1, 24, 40)
    keep[:, 18:, 30:] = 1
    inputs = cond.casper_inputs(video, [mask], keep, height=16, width=32, dilation_px=1, threshold=0.5)
    assert inputs.video.shape == (9, 16, 32, 3) and inputs.trimask.shape == (1, 9, 16, 32)  # one pair
    assert inputs.concat_mask.shape == (2, 4, 3, 2, 4)  # its trimask on the background and the alpha row
    assert inputs.source == cond.SourceInfo(frames=6, height=24, width=40, padded_frames=9)
    assert set(inputs.trimask.unique().tolist()) == {0.0, 0.5, 1.0}
    assert torch.equal(inputs.concat_mask[0], inputs.concat_mask[1])
    assert torch.equal(inputs.video[6], inputs.video[4])  # mirrored: …, 4, 5, 4, 3, 2
    restored = cond.layers_to_source(inputs.video, inputs.source)
    assert restored.shape == video.shape
    assert (restored - video).abs().mean() < 0.02  # a downscale/upscale round trip, not exact


def test_resize_frames_keeps_constant_images_exact(core):
    frames = torch.full((2, 30, 50, 3), 0.25)
    assert torch.allclose(core.frame_geometry.resize_frames(frames, 16, 32), torch.tensor(0.25))
    assert core.frame_geometry.resize_frames(frames, 30, 50) is frames
