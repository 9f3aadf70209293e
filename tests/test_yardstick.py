"""The yardstick of issue 22: the compositor's measure (layer over a new background), alpha MAE per region,
the trivial reference answers it must rank below the ground truth, the bars the quality tests use, and
the second clip generator (benchmarks.second_world). Pure torch: no ComfyUI, no models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmarks import second_world
from omnimatte_core import metrics
from omnimatte_eval import toy_eval

WORLD_CLIPS = 3  # held-out clips per world for the ranking test
TRIVIAL = ("mask_as_alpha", "alpha_zero", "alpha_one")


def _synthetic(frames: int = 3, size: int = 32):
    """Plain tensors: a bright plate, a red square object and a 50 % black shadow to its right."""
    plate = torch.full((frames, size, size, 3), 0.8)
    plate[..., 1] = torch.linspace(0.3, 0.9, size)  # some structure
    object_alpha = torch.zeros(frames, size, size)
    object_alpha[:, 8:16, 8:16] = 1.0
    shadow = torch.zeros(frames, size, size)
    shadow[:, 10:18, 16:24] = 0.5
    gt_alpha = object_alpha + shadow * (1 - object_alpha)
    colour = torch.zeros(frames, size, size, 3)
    colour[..., 0] = (object_alpha > 0).float()  # red object, black shadow
    video = gt_alpha.unsqueeze(-1) * colour + (1 - gt_alpha.unsqueeze(-1)) * plate
    return video, plate, gt_alpha, object_alpha


def _measure(video, plate, gt_alpha, object_alpha, alpha):
    from omnimatte_core.layers import recover_foreground

    foreground = recover_foreground(video, plate, alpha)
    shadow_only = (gt_alpha >= 0.1) & (object_alpha < 0.05)
    return metrics.layer_metrics(video, plate, alpha, foreground, plate, gt_alpha, object_alpha >= 0.5, shadow_only,
                                 gt_alpha >= metrics.LAYER_ALPHA_MIN)


def test_a_perfect_layer_scores_the_ceiling_and_trivial_layers_do_not():
    video, plate, gt_alpha, object_alpha = _synthetic()
    perfect = _measure(video, plate, gt_alpha, object_alpha, gt_alpha)
    assert perfect["composite_psnr"] >= 100 and perfect["composite_psnr_shadow"] >= 100
    assert perfect["alpha_mae_object"] == perfect["alpha_mae_shadow"] == perfect["alpha_mae_outside"] == 0
    trivial = {"mask": object_alpha, "zero": torch.zeros_like(gt_alpha), "one": torch.ones_like(gt_alpha)}
    for name, alpha in trivial.items():
        row = _measure(video, plate, gt_alpha, object_alpha, alpha)
        assert row["composite_psnr"] < 30, (name, row)
        assert row["alpha_mae_shadow"] >= 0.5, (name, row)  # the shadow is 0.5: neither 0 nor 1 is near it
    assert _measure(video, plate, gt_alpha, object_alpha, trivial["one"])["alpha_mae_outside"] == 1.0


def test_the_old_recomposite_is_only_a_selfcheck():
    """α ≡ 1 gives the input back over its own plate (the tautology issue 22 found); the new measure does not."""
    video, plate, gt_alpha, object_alpha = _synthetic()
    one = _measure(video, plate, gt_alpha, object_alpha, torch.ones_like(gt_alpha))
    assert one["recomposite_psnr_selfcheck"] >= 50 > one["composite_psnr"] + 20
    assert "recomposite_psnr" not in one


def test_compositing_background_is_fixed_and_unlike_a_plate():
    first, again = metrics.compositing_background(2, 64, 48), metrics.compositing_background(2, 64, 48)
    assert first.shape == (2, 64, 48, 3) and torch.equal(first, again)
    assert 0 <= float(first.min()) and float(first.max()) <= 1 and float(first.mean()) > 0.5  # bright
    assert float(first.std(dim=(0, 1, 2)).min()) > 0.05  # varies in every channel


class _IdentityVae:
    """Stands in for the toy VAE: encode and decode pass frames through (the ceiling is then the truth)."""

    def encode(self, frames):
        return frames.clone()

    def decode(self, latent):
        return latent.clone()


class _BlurVae(_IdentityVae):
    def decode(self, latent):
        return torch.nn.functional.avg_pool2d(latent.movedim(-1, 1), 5, 1, 2, count_include_pad=False).movedim(1, -1)


def test_alpha_detail_tells_a_faint_matte_from_a_blurred_one():
    """benchmarks.alpha_detail's split: a faint matte is low everywhere; a blurred one keeps its interior and
    loses its edge band; the interior is the object less 3 px (an 8 px square keeps its middle 2 px)."""
    import torch.nn.functional as F

    _, _, gt_alpha, object_alpha = _synthetic()
    region, shadow = object_alpha >= 0.5, (gt_alpha >= 0.1) & (object_alpha < 0.05)
    interior = metrics.object_interior(region)
    assert interior.sum(dim=(1, 2)).tolist() == [4, 4, 4] and bool(interior[:, 11:13, 11:13].all())
    truth = metrics.alpha_detail(gt_alpha, gt_alpha, region, shadow)
    assert truth["interior_mae"] == truth["edge_mae"] == truth["shadow_mae"] == 0.0
    faint = metrics.alpha_detail(0.6 * gt_alpha, gt_alpha, region, shadow)
    assert faint["interior_mean"] == pytest.approx(0.6) and faint["edge_mean"] == pytest.approx(0.6)
    assert faint["shadow_mean"] == pytest.approx(0.3) and faint["shadow_gt_mean"] == pytest.approx(0.5)
    blurred = F.avg_pool2d(gt_alpha.unsqueeze(1), 5, 1, 2, count_include_pad=False).squeeze(1)
    detail = metrics.alpha_detail(blurred, gt_alpha, region, shadow)
    assert detail["interior_mean"] > 0.95 and detail["edge_mean"] < 0.8 and detail["edge_mae"] > 4 * detail["interior_mae"]
    empty = metrics.alpha_detail(gt_alpha, gt_alpha, region, torch.zeros_like(shadow))
    assert empty["shadow_mean"] is None and empty["shadow_mae"] is None


def test_train_world_is_the_experts_pool_not_the_held_out_clips():
    """--world train (benchmarks.alpha_detail): the toy world's training clips 0.., never the held-out ones."""
    from benchmarks.toy_table import world_clips
    from training.toy_data import train_clips

    (train,), (held,) = world_clips("train", 1), world_clips("toy", 1)
    assert train.video.shape == held.video.shape and not torch.equal(train.video, held.video)
    assert torch.equal(train.gt_alpha, world_clips("train", 1)[0].gt_alpha)
    assert torch.allclose(train.gt_alpha, train_clips().clip(0).gt_alpha.float(), atol=1 / 255)


def test_vae_ceiling_is_the_truth_through_the_round_trip():
    clip = second_world.generate_clip(0).as_toy_clip()
    exact = toy_eval.measure(clip, toy_eval.vae_ceiling_layers(_IdentityVae(), clip))
    assert exact["composite_psnr"] >= 60 and exact["alpha_mae_shadow"] <= 1e-3, exact
    blurred = toy_eval.measure(clip, toy_eval.vae_ceiling_layers(_BlurVae(), clip))
    assert blurred["composite_psnr"] < exact["composite_psnr"] - 20 and blurred["alpha_mae_object"] > 0.01


def _world(name: str) -> list:
    if name == "second":
        return second_world.held_out_clips(WORLD_CLIPS)
    from training.toy_data import as_toy_clip, held_out_clips

    return [as_toy_clip(c) for c in held_out_clips(WORLD_CLIPS)]


@pytest.mark.parametrize("world", ["toy", "second"])
def test_the_measure_ranks_the_ground_truth_above_every_trivial_answer(world):
    clips = _world(world)
    for clip in clips:
        truth = toy_eval.measure(clip, toy_eval.reference_layers(clip, "ground_truth"))
        for kind in TRIVIAL:
            row = toy_eval.measure(clip, toy_eval.reference_layers(clip, kind))
            assert row["composite_psnr"] < truth["composite_psnr"] - 10, (world, kind, row)
            assert row["alpha_mae_shadow"] >= truth["alpha_mae_shadow"] + toy_eval.SHADOW_MARGIN, (world, kind, row)
    references = {kind: toy_eval.reference_row(clips, kind) for kind in TRIVIAL}
    assert all(toy_eval.quality_bars(toy_eval.reference_row(clips, "ground_truth"), references).values())
    bars = {kind: toy_eval.quality_bars(row, references) for kind, row in references.items()}
    # Every trivial answer fails a bar the quality tests use; the mask copy fails on the shadow,
    # α ≡ 1 and α ≡ 0 on the new-background composite.
    assert not bars["mask_as_alpha"]["shadow_beats_mask_as_alpha"], bars
    assert not bars["alpha_one"]["composite_beats_mask_as_alpha"], bars
    assert not bars["alpha_zero"]["composite_beats_mask_as_alpha"], bars
    assert all(not all(b.values()) for b in bars.values()), bars


def test_second_world_is_deterministic_and_shaped_like_a_toy_clip():
    first, again = second_world.generate_clip(3), second_world.generate_clip(3)
    for name in ("video", "plate", "foreground", "object_alpha", "gt_alpha", "object_mask"):
        assert torch.equal(getattr(first, name), getattr(again, name)), name
    assert first.meta == again.meta
    assert not torch.equal(first.video, second_world.generate_clip(4).video)
    clip = first.as_toy_clip()
    n, s = second_world.FRAMES, second_world.SIZE
    assert clip.video.shape == clip.gt_background.shape == (n, s, s, 3)
    for mask in (clip.object_mask, clip.keep_mask, clip.gt_alpha, clip.object_alpha):
        assert mask.shape == (n, s, s)
    assert set(clip.object_mask.unique().tolist()) == {0.0, 1.0} and not bool(clip.keep_mask.any())
    assert bool((clip.gt_alpha >= clip.object_alpha - 1 / 255).all())  # the layer holds the object


@pytest.mark.parametrize("index", range(6))
def test_second_world_ground_truth_composites_to_the_video(index):
    raw = second_world.generate_clip(index)
    clip = raw.as_toy_clip()
    rebuilt = metrics.recomposite(raw.foreground, clip.gt_alpha, clip.gt_background)  # 8-bit α and plate
    assert float((rebuilt - clip.video).abs().max()) <= 1.5 / 255
    assert bool(clip.shadow_only.any()) and bool(clip.object_region.any())  # every clip has both regions
    # the object stays in frame and moves slowly
    assert float(clip.object_alpha[:, :2].sum() + clip.object_alpha[:, -2:].sum()) == 0
    centre = [(clip.object_alpha[t].nonzero().float().mean(0)) for t in (0, 1)]
    assert float((centre[1] - centre[0]).norm()) < 3


def test_second_world_differs_in_kind_and_training_never_imports_it():
    kinds = {(c.meta["shape"], c.meta["shadow"], c.meta["plate"]) for c in second_world.held_out_clips(12)}
    assert {k[0] for k in kinds} == set(second_world.SHAPES) and {k[1] for k in kinds} == set(second_world.SHADOWS)
    training = Path(second_world.__file__).resolve().parents[1] / "training"
    users = [p.name for p in training.rglob("*.py") if "second_world" in p.read_text()]
    assert users == [], f"training must never see the second world: {users}"
