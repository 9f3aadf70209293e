"""Omnimatte Conditioning against Gen-Omnimatte's own Casper conditioning (issue 23, item 2).

``harness.casper_reference`` builds what their pipeline feeds Casper from their documented rules;
here it is compared with what *Omnimatte Conditioning* gives ComfyUI's Wan model (the real
``WAN21.concat_cond`` of the tiny model). Every difference found is listed in docs/architecture.md
(*Parity with Gen-Omnimatte*); these tests pin what matches and measure what does not.
"""

from __future__ import annotations

import pytest
import torch

from harness import casper_reference as ref
from training import random_models as tm
from omnimatte_eval.toy_eval import call_node

FRAMES, H, W = 13, 32, 48  # 4n+1 frames, working size = source size: no resampling in the comparison
CASPER_RADIUS = ref.DILATE_WIDTH // 2  # their 11 × 11 footprint is our dilation 5


def _masks() -> tuple[torch.Tensor, torch.Tensor]:
    """Object and keep masks as 8-bit videos give them (k/255), with grey edges at 239 and 240."""
    obj = torch.zeros(FRAMES, H, W)
    keep = torch.zeros(FRAMES, H, W)
    for i in range(FRAMES):
        obj[i, 10:20, 6 + i:18 + i] = 1.0
        obj[i, 10:20, 18 + i] = 240 / 255
        obj[i, 9, 6 + i:18 + i] = 239 / 255
        keep[i, 24:30, 30:40] = 1.0
    return obj, keep


def _condition(tiny_vae, video, obj, keep, dilation: int):
    text = tm.text_conditioning(1)
    return call_node("OmnimatteConditioning", positive=text, negative=text, vae=tiny_vae, video=video,
                     object_mask=obj, width=W, height=H, mask_threshold=0.94, dilation=dilation,
                     clip_vision_output=tm.clip_vision_output(1), keep_mask=keep)


@pytest.fixture(scope="module")
def conditioned(pack, tiny_vae):
    video = torch.rand(FRAMES, H, W, 3, generator=torch.Generator().manual_seed(3))
    obj, keep = _masks()
    positive, _, _, trimask = _condition(tiny_vae, video, obj, keep, CASPER_RADIUS)
    return {"video": video, "obj": obj, "keep": keep, "values": positive[0][1], "trimask": trimask}


def test_trimask_differs_from_caspers_only_in_the_neutral_value_and_the_undilated_keep_mask(conditioned):
    obj, keep = conditioned["obj"], conditioned["keep"]
    remove = ref.dilate(ref.object_mask(obj * 255, (H, W)))
    keep_theirs = ref.dilate(ref.object_mask(keep * 255, (H, W)))
    theirs = ref.trimask(remove, keep_theirs)
    ours = conditioned["trimask"]
    assert ours.shape == theirs.shape
    neutral = theirs == ref.NEUTRAL
    keep_ring = keep_theirs & ~ref.object_mask(keep * 255, (H, W)) & ~remove
    assert torch.equal(ours[~neutral & ~keep_ring], theirs[~neutral & ~keep_ring])  # threshold, dilation, remove wins
    assert set(ours[neutral & ~keep_ring].unique().tolist()) == {0.5}  # theirs 127/255
    assert set(ours[keep_ring].unique().tolist()) == {0.5} and keep_ring.any()  # theirs 0: keep masks dilated too



def test_threshold_094_is_caspers_240_of_255_on_8_bit_masks(core):
    obj, _ = _masks()
    ours = core.conditioning.working_mask(obj, FRAMES, H, W, 0.94)
    assert torch.equal(ours, ref.object_mask(obj * 255, (H, W)))
    assert ours[:, 10:20].any() and not ours[:, 9].any()  # 240 is object, 239 is not


def _model_mask_channels(tiny_i2v, concat_mask: torch.Tensor, latent_frames: int) -> torch.Tensor:
    """The 4 mask channels ComfyUI's WAN21.concat_cond puts in front of the video latent."""
    noise = torch.zeros(1, 16, latent_frames, H // 8, W // 8)
    y = tiny_i2v.model.concat_cond(noise=noise, concat_latent_image=torch.zeros_like(noise), concat_mask=concat_mask,
                                   device="cpu")
    return y[:, :4]


def test_packing_order_and_inversion_match_on_block_uniform_masks(core, tiny_i2v):
    """Frame 0 repeated 4×, 4 frames per latent frame, 1 − mask: equal where pooling cannot differ."""
    gen = torch.Generator().manual_seed(4)
    coarse = torch.randint(0, 3, (FRAMES, H // 8, W // 8), generator=gen).float() / 2  # {0, 0.5, 1}
    trimask = coarse.repeat_interleave(8, 1).repeat_interleave(8, 2)
    ours = _model_mask_channels(tiny_i2v, core.conditioning.latent_trimask(trimask), 4)
    assert torch.allclose(ours, ref.mask_channels(trimask, (H // 8, W // 8)), atol=1e-6)


def test_mask_on_the_latent_grid_is_an_area_mean_where_caspers_samples_the_block_centre(core, tiny_i2v, conditioned):
    trimask = conditioned["trimask"]
    ours = _model_mask_channels(tiny_i2v, core.conditioning.latent_trimask(trimask), 4)
    theirs = ref.mask_channels(trimask, (H // 8, W // 8))
    blocks = trimask.unfold(1, 8, 8).unfold(2, 8, 8)  # [N, h, w, 8, 8]
    uniform = (blocks.amax((-1, -2)) == blocks.amin((-1, -2)))
    uniform_packed = ref.mask_channels(uniform.float(), (H // 8, W // 8)) == 0  # 1 − 1: every frame's block uniform
    assert torch.allclose(ours[uniform_packed], theirs[uniform_packed], atol=1e-6)
    difference = (ours - theirs).abs()
    assert difference.max() > 0.05  # edge cells: mean of 64 pixels vs the centre 2×2


def test_video_latent_is_the_unmasked_clip_encoded(conditioned, tiny_vae):
    video, obj = conditioned["video"], conditioned["obj"]
    latent = conditioned["values"]["concat_latent_image"]
    assert torch.allclose(latent, tiny_vae.encode(video), atol=1e-5)
    zeroed = video * (obj < 0.5).unsqueeze(-1)
    assert not torch.allclose(latent, tiny_vae.encode(zeroed), atol=1e-3)  # Casper: zero_out_mask_region False


@pytest.mark.parametrize("total", [21, 22, 30, 38, 50])
def test_windows_at_16_frames_overlap_start_where_caspers_multidiffusion_does(core, total):
    ours = core.windows.WindowPlan.from_video_frames(81, 16).starts(total)
    assert ours == [begin for begin, _ in ref.windows(total)]


def test_clip_features_come_from_frame_0_uncropped(pack):
    from omnimatte_run.prompts import WORKFLOWS_DIR, workflow_prompt

    for name in ("decompose_layers", "remove_object", "clean_plate_matte"):
        prompt = workflow_prompt(WORKFLOWS_DIR / f"{name}.json")
        (encode,) = [n for n in prompt.values() if n["class_type"] == "CLIPVisionEncode"]
        assert encode["inputs"]["crop"] == "none"
        first = prompt[encode["inputs"]["image"][0]]
        assert first["class_type"] == "ImageFromBatch" and first["inputs"]["batch_index"] == 0
        assert first["inputs"]["length"] == 1
