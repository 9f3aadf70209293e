"""RecoverForeground and CompositeLayers in real graphs (in-process PromptExecutor)."""

from __future__ import annotations

import torch

from harness import executor

from test_layers_trimask import _synthetic


def _source(key):
    return {"class_type": "OmnimatteTestSource", "inputs": {"key": key}}


def _graph(node_type, inputs, widgets, outputs):
    graph = {f"s_{k}": _source(k) for k in inputs}
    graph["n"] = {"class_type": node_type, "inputs": {**{k: [f"s_{k}", 0] for k in inputs}, **widgets}}
    for index, name in enumerate(outputs):
        graph[f"c_{name}"] = {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["n", index], "key": name}}
    return graph


def _recover(runner, video, background, alpha, epsilon=1e-3):
    executor.sources.update(video=video, background=background, alpha=alpha)
    return runner.run(_graph("RecoverForeground", ["video", "background", "alpha"], {"epsilon": epsilon},
                             ["foreground", "rgba"]))


def test_recover_and_composite_chain_reproduces_the_input(core, runner):
    frames, fg, bg, alpha = _synthetic(seed=3)
    result = _recover(runner, frames, bg, alpha)
    assert result.success, result.error_message()
    foreground, rgba = result.captured["foreground"], result.captured["rgba"]
    assert foreground.shape == frames.shape and rgba.shape == (*frames.shape[:3], 4)
    assert torch.equal(rgba[..., 3], alpha)
    executor.sources.update(foreground=foreground, alpha=alpha, background=bg)
    result = runner.run(_graph("CompositeLayers", ["foreground", "alpha", "background"],
                               {"alpha_gain": 1.0, "short_background": "loop"}, ["composite"]))
    assert result.success, result.error_message()
    assert core.metrics.region_psnr(result.captured["composite"], frames) >= 40.0
    new_bg = torch.rand(1, 40, 30, 3)
    executor.sources.update(background=new_bg)
    result = runner.run(_graph("CompositeLayers", ["foreground", "alpha", "background"],
                               {"alpha_gain": 1.0, "short_background": "hold_last"}, ["composite"]))
    composite = result.captured["composite"]
    assert composite.shape == frames.shape and composite.min() >= 0 and composite.max() <= 1


def test_mismatched_layers_are_refused_with_node_and_fix(runner):
    frames, fg, bg, alpha = _synthetic(seed=4)
    result = _recover(runner, frames, bg[:2], alpha)
    assert not result.success
    message = result.error_message()
    assert "RecoverForeground" in message and "'background' is 2 frames" in message and "same size" in message
    result = _recover(runner, frames, bg, alpha[:, :, :16])
    assert not result.success and "'alpha' is 3 frames of 16×24" in result.error_message()


def test_nan_input_is_refused(runner):
    frames, fg, bg, alpha = _synthetic(seed=5)
    frames = frames.clone()
    frames[1, 2, 3, 0] = float("nan")
    result = _recover(runner, frames, bg, alpha)
    assert not result.success and "'video' contains NaN" in result.error_message()


def test_epsilon_out_of_range_is_refused_by_comfyuis_validator(runner):
    import pytest

    frames, fg, bg, alpha = _synthetic(seed=6)
    with pytest.raises(executor.GraphInvalid, match="epsilon"):
        _recover(runner, frames, bg, alpha, epsilon=0.5)
