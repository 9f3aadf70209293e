"""training/ data: pseudo-shadow and camera statistics over many seeds, determinism, folder sources."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from training import camera, shadow
from training.dataset import DataConfig, SyntheticClips, composite
from training.procedural import procedural_background, procedural_foreground
from training.sources import (DEFAULT_CAPTION, ProceduralBackgrounds, ProceduralForegrounds, VideoFolderBackgrounds,
                              VideoMatteFolder)

SEEDS = range(40)


def _rows_centroid(matte: torch.Tensor) -> torch.Tensor:
    """Per-row x centroid of [H, W] (NaN where the row is empty)."""
    x = torch.arange(matte.shape[1], dtype=torch.float32)
    mass = matte.sum(dim=1)
    return torch.where(mass > 1e-3, (matte * x).sum(dim=1) / mass.clamp(min=1e-6), torch.full_like(mass, float("nan")))


def _measure(alpha: torch.Tensor, params: shadow.ShadowParams) -> dict:
    """Opacity, height ratio and shear angle measured on the rendered shadow (frame 0)."""
    matte = shadow.render_shadow(alpha, params)[0]
    flat = shadow.render_shadow(alpha, params, shear_enabled=False)[0]
    peak = float(matte.max())
    rows = (matte >= 0.5 * peak).any(dim=1)
    obj_rows = float(shadow.object_height(alpha[:1])[0])
    feet = float(shadow.feet_row(alpha[:1])[0])
    shift = _rows_centroid(matte) - _rows_centroid(flat)  # the shear's sideways displacement per row
    below = torch.arange(matte.shape[0], dtype=torch.float32) - feet
    keep = (~torch.isnan(shift)) & (below > 0) & (flat.sum(dim=1) > 0.05 * flat.sum(dim=1).max())
    slope = float((shift[keep] * below[keep]).sum() / (below[keep] ** 2).sum())
    return {"opacity": peak, "height_ratio": float(rows.sum()) / obj_rows,
            "shear_deg": math.degrees(math.atan(slope)), "obj_rows": obj_rows}


def test_pseudo_shadow_statistics_within_paper_ranges():
    measured = []
    for seed in SEEDS:
        rng = np.random.default_rng([seed, 7])
        _, alpha = procedural_foreground(rng, 1, 192, 256)
        params = shadow.sample_shadow_params(rng)
        m = _measure(alpha, params)
        tol_rows = 2.5 / m["obj_rows"]  # a row or two of blur/antialiasing at each end
        assert 0.30 * 0.85 <= m["opacity"] <= 0.70 + 1e-6, (seed, m)
        assert 0.85 * params.opacity <= m["opacity"] <= params.opacity + 1e-6, (seed, m, params)
        assert 0.10 - tol_rows <= m["height_ratio"] <= 0.30 + tol_rows, (seed, m)
        assert abs(m["height_ratio"] - params.compress) <= tol_rows + 0.02, (seed, m, params)
        assert 28.0 <= abs(m["shear_deg"]) <= 62.0, (seed, m)
        assert abs(m["shear_deg"] - params.shear_deg) <= 2.5, (seed, m, params)
        measured.append(m)
    # the draws cover the ranges, both shear directions
    assert min(m["opacity"] for m in measured) < 0.4 and max(m["opacity"] for m in measured) > 0.6
    assert {math.copysign(1, m["shear_deg"]) for m in measured} == {-1.0, 1.0}


def test_shadow_darkens_background_before_foreground():
    rng = np.random.default_rng(3)
    rgb, alpha = procedural_foreground(rng, 5, 64, 96)
    bg = procedural_background(rng, 5, 64, 96)
    matte = shadow.render_shadow(alpha, shadow.sample_shadow_params(rng))
    video, gt = composite(rgb, alpha, bg, matte)
    shadow_only = (matte > 0.05) & (alpha < 1e-4)
    assert shadow_only.any()
    assert torch.allclose(video[shadow_only], (bg * (1 - matte[..., None]))[shadow_only], atol=2e-4)
    # the omnimatte equation holds with F = fg on the object and black in the shadow
    fg_layer = rgb * (alpha / gt.clamp(min=1e-6))[..., None]
    assert torch.allclose(gt[..., None] * fg_layer + (1 - gt[..., None]) * bg, video, atol=1e-5)
    assert torch.all(gt >= alpha - 1e-6) and torch.all(gt >= matte - 1e-6)


def test_camera_motion_statistics_and_coherence():
    h, w, n = 48, 96, 9
    imbalance = []
    for seed in SEEDS:
        rng = np.random.default_rng([seed, 11])
        p = camera.sample_camera(rng, h, w)
        pad = (p.pad_left + p.pad_right) / w
        assert 0.3 - 1.5 / w <= pad <= 0.5 + 1.5 / w, (seed, p)
        assert p.start.tx * p.end.tx < 0, "translations must have opposite signs"
        imbalance.append(abs(p.pad_left - p.pad_right) / (p.pad_left + p.pad_right))
        for s in (p.start, p.end):
            assert 0.15 <= abs(s.tx) <= 0.30 and abs(s.rotate_deg) <= 5 and 0.95 <= s.scale <= 1.05
            assert abs(s.shear_deg) <= 3
        # measured: render an x-coordinate image; the centre pixel shows where the view looks
        coords = torch.arange(w, dtype=torch.float32).view(1, 1, w, 1).expand(n, h, w, 1)
        seen = camera.apply_camera(coords, p)[:, h // 2, w // 2, 0]
        centre = (w - 1) / 2
        expected = centre + torch.tensor([p.start.tx, p.end.tx]) * w
        assert torch.allclose(seen[[0, -1]], expected, atol=1.0), (seed, seen, expected)
        steps = seen.diff()
        assert torch.all(steps * math.copysign(1, p.end.tx - p.start.tx) > -1e-3), "view moves one way"
        assert abs(float(steps[0])) < abs(float(steps[n // 2 - 1])), "eased: slow start"
    assert max(imbalance) > 0.4 and sum(imbalance) / len(imbalance) > 0.15, "padding should be asymmetric"


def test_same_seed_same_clip():
    config = DataConfig(height=64, width=96, frames=5, seed=5, shadow_prob=1.0, camera_prob=1.0)
    a = SyntheticClips(config, ProceduralForegrounds(), ProceduralBackgrounds())
    b = SyntheticClips(config, ProceduralForegrounds(), ProceduralBackgrounds())
    c1, c2, other = a.clip(3), b.clip(3), a.clip(4)
    for name in ("video", "background", "object_alpha", "shadow_alpha", "gt_alpha", "object_mask", "trimask"):
        assert torch.equal(getattr(c1, name), getattr(c2, name)), name
    assert c1.meta == c2.meta
    assert not torch.equal(c1.video, other.video)
    assert not torch.equal(c1.video, SyntheticClips(DataConfig(64, 96, 5, seed=6), ProceduralForegrounds(),
                                                    ProceduralBackgrounds()).clip(3).video)


def test_model_mask_comes_from_object_alpha_only():
    config = DataConfig(height=64, width=96, frames=5, seed=1, shadow_prob=1.0, camera_prob=0.0)
    clip = SyntheticClips(config, ProceduralForegrounds(), ProceduralBackgrounds()).clip(0)
    assert torch.equal(clip.object_mask, clip.object_alpha >= 0.5)
    assert set(clip.trimask.unique().tolist()) <= {0.5, 1.0}
    assert clip.shadow_region.any() and not (clip.shadow_region & (clip.trimask >= 1)).any()
    assert not (clip.trimask[clip.shadow_alpha > 0.2] >= 1).all(), "the shadow must not be in the object mask"


def test_config_refuses_bad_shapes():
    with pytest.raises(ValueError, match="4n\\+1"):
        DataConfig(frames=8)
    with pytest.raises(ValueError, match="multiples of 16"):
        DataConfig(height=100)


def _write_video(path, frames: np.ndarray, gray: bool = False) -> None:
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264rgb" if not gray else "libx264", rate=8)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if not gray else "yuv444p"
        stream.options = {"crf": "0"}
        for f in frames:
            image = av.VideoFrame.from_ndarray(np.repeat(f[..., None], 3, -1) if gray else f, format="rgb24")
            for packet in stream.encode(image.reformat(format=stream.pix_fmt)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_folder_sources_videomatte_and_captioned_backgrounds(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    fg_root, bg_root = tmp_path / "vm", tmp_path / "bg"
    for sub in ("fgr", "pha"):
        (fg_root / sub / "clip_b").mkdir(parents=True)
    bg_root.mkdir()
    alpha = np.zeros((6, 48, 80), np.uint8)
    alpha[:, 10:40, 30:50] = 255
    _write_video(fg_root / "fgr" / "clip_a.mp4", rng.integers(0, 255, (6, 48, 80, 3), dtype=np.uint8))
    _write_video(fg_root / "pha" / "clip_a.mp4", alpha, gray=True)
    for i in range(3):  # frame-folder variant, shorter than the clip length asked for
        Image.fromarray(rng.integers(0, 255, (48, 80, 3), dtype=np.uint8)).save(fg_root / "fgr" / "clip_b" / f"{i:04d}.png")
        Image.fromarray(alpha[i]).save(fg_root / "pha" / "clip_b" / f"{i:04d}.png")
    _write_video(bg_root / "beach.mp4", rng.integers(0, 255, (12, 40, 72, 3), dtype=np.uint8))
    (bg_root / "beach.txt").write_text("a video of beautiful beach.\n")
    _write_video(bg_root / "street.mp4", rng.integers(0, 255, (12, 40, 72, 3), dtype=np.uint8))

    fgs, bgs = VideoMatteFolder(fg_root), VideoFolderBackgrounds(bg_root)
    assert [p[0].name for p in fgs.pairs] == ["clip_a.mp4", "clip_b"]
    assert bgs.captions() == sorted(["a video of beautiful beach.", DEFAULT_CAPTION])
    clips = SyntheticClips(DataConfig(32, 48, 9, seed=2, shadow_prob=1.0), fgs, bgs)
    seen_fg, seen_caption = set(), set()
    for i in range(8):
        clip = clips.clip(i)
        assert clip.video.shape == (9, 32, 48, 3) and clip.gt_alpha.shape == (9, 32, 48)
        assert 0.0 <= float(clip.object_alpha.min()) and float(clip.object_alpha.max()) <= 1.0
        seen_fg.add(clip.meta["foreground"])
        seen_caption.add(clip.caption)
    assert seen_fg == {"clip_a.mp4", "clip_b"} and len(seen_caption) == 2
    assert torch.equal(clips.clip(5).video, clips.clip(5).video)


def test_folder_errors_say_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="fgr/ and pha/"):
        VideoMatteFolder(tmp_path)
    with pytest.raises(ValueError, match="holds no videos"):
        VideoFolderBackgrounds(tmp_path)


def test_preview_grid_png(tmp_path):
    from PIL import Image

    from training import data

    out = data.main(["--preview", str(tmp_path / "grid.png"), "--clips", "3", "--height", "32", "--width", "48",
                     "--frames", "5"])
    image = Image.open(out)
    assert image.size == (4 * 48, 3 * 32 + 14)


def test_clip_vision_cache_means_a_second_run_never_loads_clip_h(pack, clip_vision_file, tmp_path):
    """Features are cached by frame content: the second expert's run reads them without CLIP-H."""
    from training.features import ClipVisionFeatures

    frames = [torch.rand(32, 48, 3, generator=torch.Generator().manual_seed(i)) for i in range(2)]
    first = ClipVisionFeatures(str(clip_vision_file), tmp_path / "cache")
    computed = [first.features(f, i) for i, f in enumerate(frames)]
    assert first.misses == 2 and first.model is not None
    assert computed[0].shape == (1, 257, 1280) and not torch.equal(computed[0], computed[1])
    second = ClipVisionFeatures(str(clip_vision_file), tmp_path / "cache")
    again = [second.features(f, i + 7) for i, f in enumerate(frames)]  # same frames, other indices
    assert second.misses == 0 and second.model is None
    assert all(torch.equal(a, b) for a, b in zip(computed, again))
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 2


def test_effect_cells_follow_the_wan_latent_grid():
    """Frame 0 is a latent frame alone, then frames go in fours; 8×8 pixels make a cell."""
    from training.encode import latent_cells

    region = torch.zeros(17, 32, 48, dtype=torch.bool)
    region[0, 3, 3] = True  # latent frame 0, cell (0, 0)
    region[5, 9, 17] = True  # frames 5-8 → latent frame 2, cell (1, 2)
    cells = latent_cells(region)
    assert cells.shape == (1, 1, 5, 4, 6)
    assert cells.sum() == 2 and cells[0, 0, 0, 0, 0] == 1 and cells[0, 0, 2, 1, 2] == 1
    region[8, 31, 47] = True  # the last frame of that group, the last cell
    assert latent_cells(region)[0, 0, 2, 3, 5] == 1 and latent_cells(region)[0, 0, 3].sum() == 0
    with pytest.raises(ValueError, match="4n\\+1"):
        latent_cells(region[:16])


def test_effect_weighted_mean_weighs_the_effect_cells():
    """λ = 0 is the plain mean; λ > 0 makes an error on the effect's cells cost more than the same error elsewhere."""
    from training.objective import FlowBatch, effect_cell_weight, weighted_mean

    cells = torch.zeros(1, 1, 2, 4, 4)
    cells[0, 0, 1, 2, 2] = 1
    batch = FlowBatch(*[torch.zeros(1)] * 7, effect_cells=cells)
    on_effect, elsewhere = torch.zeros(1, 16, 2, 4, 4), torch.zeros(1, 16, 2, 4, 4)
    on_effect[0, :, 1, 2, 2] = 1
    elsewhere[0, :, 0, 0, 0] = 1
    plain = effect_cell_weight(batch, 0.0)
    assert torch.isclose(weighted_mean(on_effect, plain), on_effect.mean())
    weight = effect_cell_weight(batch, 8.0)
    assert float(weighted_mean(on_effect, weight)) == pytest.approx(9 / 40)  # 9 of a total weight of 31 + 9 (per channel)
    assert float(weighted_mean(elsewhere, weight)) == pytest.approx(1 / 40)
    assert torch.isclose(weighted_mean(torch.ones(1, 16, 2, 4, 4), weight), torch.tensor(1.0))  # same scale
    with pytest.raises(ValueError, match="effect cells"):
        effect_cell_weight(FlowBatch(*[torch.zeros(1)] * 7), 8.0)
