"""Temporal windows: the window maths on plain tensors, and long clips through the real sampler with
the toy world (windowed vs one window, seams, any frame count)."""

from __future__ import annotations

import pytest
import torch

from harness.toy_host import needs_toy_world


def test_windows_cover_the_clip_and_the_last_one_ends_it(core):
    plan = core.windows.WindowPlan(length=5, overlap=2)
    assert plan.starts(5) == [0] and plan.starts(3) == [0]
    assert plan.starts(11) == [0, 3, 6]
    assert plan.starts(12) == [0, 3, 6, 7]
    for total in range(5, 40):
        starts = plan.starts(total)
        covered = torch.zeros(total, dtype=torch.bool)
        for s in starts:
            covered[s:s + 5] = True
        assert covered.all() and starts[-1] + 5 == total
        assert all(b - a <= 3 for a, b in zip(starts, starts[1:]))  # at least `overlap` frames shared


def test_settings_in_video_frames_become_latent_windows(core):
    make = core.windows.WindowPlan.from_video_frames
    assert make(0, 32) is None
    assert make(81, 32) == core.windows.WindowPlan(21, 8) and make(17, 6) == core.windows.WindowPlan(5, 2)
    for frames, overlap in ((80, 8), (5, 4), (17, 0), (17, 17), (17, 40)):
        with pytest.raises(ValueError, match="window"):
            make(frames, overlap)


def test_blended_windows_match_the_reference_maths(core):
    """A forward that depends on each frame's place in its window: the blend equals a hand-written
    weighted average over the windows covering each frame, and a clip that fits is one call."""
    w = core.windows
    plan = w.WindowPlan(length=5, overlap=2)
    x = torch.randn(2, 3, 13, 4, 6)

    def forward(chunk):  # [B, C, t, h, w] → position-dependent output with 2 channels
        position = torch.arange(chunk.shape[2], dtype=chunk.dtype)[None, None, :, None, None]
        return chunk[:, :2] * 2 + position

    out = w.run_windowed(forward, x, plan)
    expected = torch.zeros(2, 2, 13, 4, 6)
    for t in range(13):
        total_weight, value = 0.0, 0.0
        for start in plan.starts(13):
            if start <= t < start + 5:
                weight = float(w.blend_weights(start, 5, 13, 2)[t - start])
                value = value + weight * (x[:, :2, t] * 2 + (t - start))
                total_weight += weight
        expected[:, :, t] = value / total_weight
    assert torch.allclose(out, expected, atol=1e-5)
    calls = []
    assert torch.equal(w.run_windowed(lambda c: calls.append(c.shape) or forward(c), x[:, :, :5], plan),
                       forward(x[:, :, :5]))
    assert calls == [x[:, :, :5].shape]
    ramps = w.blend_weights(3, 5, 13, 2)
    assert ramps.tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.5])  # the first frame is left to the window before
    tail = w.blend_weights(0, 5, 13, 2)[-2:]
    assert (tail + w.blend_weights(3, 5, 13, 2)[:2]).tolist() == pytest.approx([1.0, 1.0])
    assert w.blend_weights(0, 5, 13, 2)[0] == 1.0 and w.blend_weights(8, 5, 13, 2)[-1] == 1.0  # clip ends


# -- the toy world through the real sampler ------------------------------------------------------------

TOY_WINDOW, TOY_OVERLAP = 17, 8  # toy scale: the 17 frames the toy models were trained on; the default
# overlap's share of a window (32 of 81 frames) at that size
SEAM_RATIO_MAX = 1.10  # the bound; measured 1.059 (alpha) and 1.001 (background), 2026-11-30


@pytest.fixture(scope="module")
def toy(pack):
    from omnimatte_eval import toy_eval

    return toy_eval.load_toy_models()


@needs_toy_world
def test_a_clip_that_fits_one_window_is_unchanged_by_the_window_setting(toy):
    from omnimatte_eval import toy_eval
    from training.toy_data import as_toy_clip, held_out_clips

    clip = as_toy_clip(held_out_clips(1)[0])  # 17 frames
    windowed = toy_eval.decompose(toy, clip, steps=4, window_frames=TOY_WINDOW, window_overlap=TOY_OVERLAP)
    whole = toy_eval.decompose(toy, clip, steps=4, window_frames=0)
    assert torch.equal(windowed["alpha"], whole["alpha"]) and torch.equal(windowed["background"], whole["background"])


@needs_toy_world
def test_seams_between_windows_stay_within_ten_percent(toy, both_cores):
    """Held-out toy clips of 49, 65 and 97 frames in windows of 17: frames where windows overlap are no
    worse than the others (and every frame comes back, at the clip's own count)."""
    from benchmarks.long_video import SEAM_CLIPS
    from omnimatte_eval import toy_eval
    from training.toy_data import long_held_out_clip

    clips = [long_held_out_clip(index, frames) for index, frames in SEAM_CLIPS]
    windowed, whole = [], []
    for clip in clips:
        layers = toy_eval.decompose(toy, clip, window_frames=TOY_WINDOW, window_overlap=TOY_OVERLAP)
        assert layers["alpha"].shape == clip.gt_alpha.shape
        windowed.append(toy_eval.frame_errors(clip, layers))
        whole.append(toy_eval.frame_errors(clip, toy_eval.decompose(toy, clip, window_frames=0)))
    summary = toy_eval.seam_summary(clips, windowed, whole, TOY_WINDOW, TOY_OVERLAP)
    assert summary["seam_error_ratio"] <= SEAM_RATIO_MAX, summary
    assert summary["alpha_windowed_mean_error"] < 0.1, summary  # measured 0.083 (one window: 0.168)
    # the one-window figures are the whole clip's own run: the 17-frame-trained toy models do worse on it
    assert summary["alpha_one_window_mean_error"] > summary["alpha_windowed_mean_error"], summary


@needs_toy_world
def test_a_241_frame_clip_completes_in_windows_with_progress_over_windows(core, toy):
    import comfy.utils

    from omnimatte_eval import toy_eval

    frames, steps = 241, 2
    torch.manual_seed(0)
    video = torch.rand(frames, 64, 64, 3)
    mask = torch.zeros(frames, 64, 64)
    mask[:, 16:40, 16:40] = 1.0
    seen = []
    previous = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(lambda value, total, *args, **kwargs: seen.append((value, total)))
    try:
        layers = toy_eval.decompose(toy, toy_eval.PlainClip(video, mask), steps=steps, size=64,
                                    window_frames=TOY_WINDOW, window_overlap=TOY_OVERLAP)
    finally:
        comfy.utils.set_progress_bar_global_hook(previous)
    assert layers["alpha"].shape == (frames, 64, 64) and torch.isfinite(layers["background"]).all()
    windows = core.windows.WindowPlan.from_video_frames(TOY_WINDOW, TOY_OVERLAP).count(61)  # 241 frames = 61 latent
    assert windows == 20
    sampler = [value for value, total in seen if total == steps * windows]
    # ComfyUI's bar throttles what it sends by time; what arrives counts windows: it ends at steps × windows,
    # never goes backwards, and shows ticks inside a step (values that are not whole steps)
    assert sampler and sampler[-1] == steps * windows and sampler == sorted(sampler)
    assert any(value % windows for value in sampler), sampler


def test_runner_brings_the_200_frame_animator_draw_back_whole(core, tmp_path):
    """The real 200-frame clip through the headless runner: toy models at 128×128, 2 steps, the
    sampler's default 81-frame windows (four of them); layers at the source size, all 200 frames."""
    import subprocess
    import sys

    from harness.data import shared_clips
    from omnimatte_host.comfy_host import PACK_DIR

    clip = shared_clips() / "animator-draw"
    source = core.video_files.probe(str(clip / "input_video.mp4"))
    done = subprocess.run([sys.executable, "-m", "omnimatte_run.run_workflow", "--toy", "--video",
                           str(clip / "input_video.mp4"), "--mask", str(clip / "mask_00.mp4"), "--out", str(tmp_path),
                           "--width", "128", "--height", "128", "--steps", "2", "--threads", "2"],  # both cores
                          cwd=PACK_DIR, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "input_video-mask_00"
    alphas = sorted((folder / "alpha").glob("*.png"))
    assert len(alphas) == 200 == source.declared_frames
    plate = core.video_files.probe(str(folder / "background" / "background.mp4"))
    assert (plate.width, plate.height) == (source.width, source.height)
    assert sum(1 for _ in core.video_files.iter_frames(str(folder / "background" / "background.mp4"))) == 200
