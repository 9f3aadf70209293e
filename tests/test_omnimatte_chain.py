"""The whole node chain on the tiny Wan: conditioning → experts → sampler → decode → recover → composite."""

from __future__ import annotations

import contextlib

import torch

from harness import executor
from training import random_models as tm

SOURCE_FRAMES, SOURCE_H, SOURCE_W = 10, 48, 80  # not 4n+1, not the working size
WORK_H, WORK_W = 32, 48


def _clip(seed: int = 0, frames: int = SOURCE_FRAMES, h: int = SOURCE_H, w: int = SOURCE_W):
    """A moving square on a gradient; the mask covers the square only."""
    gen = torch.Generator().manual_seed(seed)
    video = torch.linspace(0, 1, w).expand(frames, h, w).unsqueeze(-1).repeat(1, 1, 1, 3) * 0.5
    video = video + 0.1 * torch.rand(frames, h, w, 3, generator=gen)
    mask = torch.zeros(frames, h, w)
    for i in range(frames):
        x = 8 + 3 * i
        mask[i, 12:30, x:x + 16] = 1.0
        video[i, 12:30, x:x + 16] = torch.tensor([0.9, 0.2, 0.1])
    return video.clamp(0, 1), mask


def chain_graph(files: dict, experts: dict, model: str = "i2v", clip: bool = True, steps: int = 3,
                tau: float | list = 0.5, width: int = WORK_W, height: int = WORK_H, extra_sampler: dict = None):
    """API-format graph of the full chain; tensors come from OmnimatteTestSource keys."""
    source = {"class_type": executor.SOURCE_NODE}
    graph = {
        "unet": {"class_type": "UNETLoader", "inputs": {"unet_name": files[model].name, "weight_dtype": "default"}},
        "shift": {"class_type": "ModelSamplingSD3", "inputs": {"model": ["unet", 0], "shift": 5.0}},
        "vae": {"class_type": "VAELoader", "inputs": {"vae_name": files["vae"].name}},
        **{k: {**source, "inputs": {"key": k}} for k in ("positive", "negative", "clip", "video", "mask", "new_bg")},
        "cond": {"class_type": "OmnimatteConditioning", "inputs": {
            "positive": ["positive", 0], "negative": ["negative", 0], "vae": ["vae", 0], "video": ["video", 0],
            "object_mask": ["mask", 0], "width": width, "height": height, "mask_threshold": 0.5, "dilation": -1}},
        "experts": {"class_type": "LoadOmnimatteExperts", "inputs": {
            "effect_expert": experts["effect"], "effect_strength": 1.0,
            "quality_expert": experts["quality"], "quality_strength": 1.0}},
        "sampler": {"class_type": "BranchWanSampler", "inputs": {
            "model": ["shift", 0], "experts": ["experts", 0], "positive": ["cond", 0], "negative": ["cond", 1],
            "latent": ["cond", 2], "seed": 7, "steps": steps, "cfg": 1.0, "sampler_name": "euler",
            "scheduler": "simple", "tau": tau, **(extra_sampler or {})}},
        "decode": {"class_type": "OmnimatteDecode", "inputs": {
            "vae": ["vae", 0], "background": ["sampler", 0], "alpha": ["sampler", 1]}},
        "recover": {"class_type": "RecoverForeground", "inputs": {
            "video": ["video", 0], "background": ["decode", 0], "alpha": ["decode", 1], "epsilon": 1e-3}},
        "composite": {"class_type": "CompositeLayers", "inputs": {
            "foreground": ["recover", 0], "alpha": ["decode", 1], "background": ["new_bg", 0], "alpha_gain": 1.0,
            "short_background": "loop"}},
    }
    if clip:
        graph["cond"]["inputs"]["clip_vision_output"] = ["clip", 0]
    captures = {"background": ["decode", 0], "alpha": ["decode", 1], "foreground": ["recover", 0],
                "rgba": ["recover", 1], "composite": ["composite", 0], "trimask": ["cond", 3],
                "bg_latent": ["sampler", 0], "alpha_latent": ["sampler", 1]}
    for key, link in captures.items():
        graph[f"capture_{key}"] = {"class_type": executor.CAPTURE_NODE, "inputs": {"value": link, "key": key}}
    return graph


def set_sources(video, mask, seed: int = 0):
    executor.sources.update(positive=tm.text_conditioning(seed), negative=tm.text_conditioning(seed + 1),
                            clip=tm.clip_vision_output(seed), video=video, mask=mask,
                            new_bg=torch.rand(1, 20, 30, 3, generator=torch.Generator().manual_seed(seed)))


def assert_layers_match_source(captured: dict, frames: int, h: int, w: int) -> None:
    assert captured["background"].shape == (frames, h, w, 3)
    assert captured["alpha"].shape == (frames, h, w)
    assert captured["foreground"].shape == (frames, h, w, 3)
    assert captured["rgba"].shape == (frames, h, w, 4)
    assert captured["composite"].shape == (frames, h, w, 3)
    alpha = captured["alpha"]
    assert torch.isfinite(alpha).all() and alpha.min() >= 0 and alpha.max() <= 1
    assert torch.equal(captured["rgba"][..., 3], alpha)
    for key in ("background", "foreground", "composite"):
        assert torch.isfinite(captured[key]).all() and captured[key].min() >= 0 and captured[key].max() <= 1


def test_whole_chain_returns_layers_at_source_size(runner, tiny_files, expert_files):
    video, mask = _clip()
    set_sources(video, mask)
    result = runner.run(chain_graph(tiny_files, expert_files))
    assert result.success, result.error_message()
    captured = result.captured
    assert_layers_match_source(captured, SOURCE_FRAMES, SOURCE_H, SOURCE_W)
    trimask = captured["trimask"]
    assert trimask.shape == (13, WORK_H, WORK_W)  # 10 frames mirror-padded to 4n+1
    assert set(trimask.unique().tolist()) == {0.5, 1.0}
    assert torch.equal(trimask[10], trimask[8]) and torch.equal(trimask[12], trimask[6])  # mirrored in time
    for key in ("bg_latent", "alpha_latent"):
        assert captured[key]["samples"].shape == (1, 16, 4, WORK_H // 8, WORK_W // 8)
    assert not torch.equal(captured["bg_latent"]["samples"], captured["alpha_latent"]["samples"])


@contextlib.contextmanager
def progress_hook(hook):
    """Install a ComfyUI progress hook (main.py installs one that forwards to the browser)."""
    import comfy.utils

    previous = comfy.utils.PROGRESS_BAR_HOOK
    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        yield
    finally:
        comfy.utils.set_progress_bar_global_hook(previous)


def test_sampler_reports_progress_with_previews(runner, tiny_files, expert_files):
    video, mask = _clip(seed=1)
    set_sources(video, mask, seed=1)
    from comfy.cli_args import LatentPreviewMethod, args

    updates = []

    def record(value, total, preview=None, node_id=None):
        updates.append((node_id or runner.server.last_node_id, value, total, preview))

    previous_method, args.preview_method = args.preview_method, LatentPreviewMethod.Latent2RGB
    try:
        with progress_hook(record):
            first = runner.run(chain_graph(tiny_files, expert_files, steps=4), {"preview_method": "latent2rgb"})
    finally:
        args.preview_method = previous_method
    assert first.success, first.error_message()
    sampler = [(v, t, p) for n, v, t, p in updates if n == "sampler"]
    assert [v for v, _, _ in sampler] == [1, 2, 3, 4] and {t for _, t, _ in sampler} == {4}
    kind, image, _ = sampler[-1][2]  # (format, PIL image, max size): background | alpha side by side
    assert kind == "JPEG" and image.width == 2 * image.height * WORK_W // WORK_H
    again = runner.run(chain_graph(tiny_files, expert_files, steps=4, extra_sampler={"seed": 8}))
    assert again.success and not torch.equal(again.captured["alpha_latent"]["samples"],
                                             first.captured["alpha_latent"]["samples"])


def test_cancel_during_sampling_then_next_run_works(runner, tiny_files, expert_files):
    import comfy.model_management as mm

    video, mask = _clip(seed=2)
    set_sources(video, mask, seed=2)
    seen = []

    def cancel_after_first_step(value, total, preview=None, node_id=None):
        node_id = node_id or runner.server.last_node_id
        seen.append((node_id, value))
        if node_id == "sampler" and value == 1:
            mm.interrupt_current_processing(True)  # what the UI's cancel button does

    with progress_hook(cancel_after_first_step):
        result = runner.run(chain_graph(tiny_files, expert_files, steps=6))
    assert not result.success
    assert any(event == "execution_interrupted" for event, _ in result.messages)
    assert [v for n, v in seen if n == "sampler"] == [1]  # stopped at the next step, never reached 6
    assert "capture_alpha" not in result.outputs and "alpha" not in result.captured
    result = runner.run(chain_graph(tiny_files, expert_files, steps=3, extra_sampler={"seed": 99}))
    assert result.success, result.error_message()
    assert_layers_match_source(result.captured, SOURCE_FRAMES, SOURCE_H, SOURCE_W)


def test_tau_switches_experts_for_the_alpha_only(runner, tiny_files, expert_files):
    """τ=1: Quality Expert (mask C) every step; τ=0: Effect Expert (mask B) every step.

    Under both masks background queries see only background tokens and LoRA touches alpha
    rows only, so the background must not depend on τ while the alpha must.
    """
    video, mask = _clip(seed=3)
    set_sources(video, mask, seed=3)
    latents = {}
    for tau in (0.0, 1.0):
        result = runner.run(chain_graph(tiny_files, expert_files, tau=tau, steps=2))
        assert result.success, result.error_message()
        latents[tau] = result.captured["bg_latent"]["samples"], result.captured["alpha_latent"]["samples"]
    (bg0, alpha0), (bg1, alpha1) = latents[0.0], latents[1.0]
    torch.testing.assert_close(bg0, bg1, rtol=0, atol=1e-5 * bg0.abs().max().item())
    assert (alpha0 - alpha1).abs().max() > 1e-2
