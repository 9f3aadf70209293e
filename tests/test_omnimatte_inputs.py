"""Bad input to the node chain: each is refused by the right node with a message that names the fix."""

from __future__ import annotations

import os

import pytest
import torch

from harness import executor
from test_omnimatte_chain import _clip, chain_graph, set_sources


def _run(runner, graph):
    result = runner.run(graph)
    assert not result.success and result.error(), "the graph should have failed with an execution error"
    return result.error_message()


@pytest.fixture
def clip_sources():
    video, mask = _clip(seed=5)
    set_sources(video, mask, seed=5)
    return video, mask


def test_mask_frame_count_and_size_mismatch(runner, tiny_files, expert_files, clip_sources):
    video, mask = clip_sources
    executor.sources["mask"] = mask[:7]
    message = _run(runner, chain_graph(tiny_files, expert_files))
    assert message.startswith("OmnimatteConditioning:") and "7 frames but the video has 10" in message
    executor.sources["mask"] = mask[:, :40]
    message = _run(runner, chain_graph(tiny_files, expert_files))
    assert "'object_mask' is 80×40 but the video is 80×48" in message and "Make the mask" in message


def test_single_mask_frame_broadcasts_and_partly_empty_mask_is_fine(runner, tiny_files, expert_files, clip_sources):
    video, mask = clip_sources
    executor.sources["mask"] = mask[3:4]
    result = runner.run(chain_graph(tiny_files, expert_files, steps=1))
    assert result.success, result.error_message()
    assert (result.captured["trimask"] == 1.0).flatten(1).any(1).all()  # the one frame serves every frame
    partly = mask.clone()
    partly[2:6] = 0
    executor.sources["mask"] = partly
    result = runner.run(chain_graph(tiny_files, expert_files, steps=1))
    assert result.success, result.error_message()
    assert not (result.captured["trimask"][2:6] == 1.0).any()


def test_empty_mask_nan_video_and_bad_size(runner, tiny_files, expert_files, clip_sources):
    video, mask = clip_sources
    executor.sources["mask"] = torch.zeros_like(mask)
    message = _run(runner, chain_graph(tiny_files, expert_files))
    assert "OmnimatteConditioning: the object mask is empty in every frame" in message and "InvertMask" in message
    executor.sources["mask"] = mask
    bad = video.clone()
    bad[4, 3, 3, 1] = float("nan")
    executor.sources["video"] = bad
    message = _run(runner, chain_graph(tiny_files, expert_files))
    assert "OmnimatteConditioning: 'video' contains NaN or Inf" in message
    executor.sources["video"] = video
    message = _run(runner, chain_graph(tiny_files, expert_files, width=40))
    assert "multiples of 16; got 40×32" in message and "Use e.g. 48×32" in message


def test_tau_widget_out_of_range_is_refused_by_the_validator(runner, tiny_files, expert_files, clip_sources):
    graph = chain_graph(tiny_files, expert_files, tau=1.5)
    _valid, _error, outputs, node_errors = runner.validate(graph)
    errors = node_errors["sampler"]["errors"]
    assert [(e["type"], e["extra_info"]["input_name"]) for e in errors] == [("value_bigger_than_max", "tau")]
    assert "capture_alpha" not in outputs  # nothing downstream of the sampler runs
    result = runner.run(graph)
    assert "alpha" not in result.captured and "trimask" in result.captured


@pytest.mark.parametrize("tau", [1.5, -0.1, float("nan")])
def test_linked_tau_out_of_range_is_refused_by_the_sampler(runner, tiny_files, expert_files, clip_sources, tau):
    graph = chain_graph(tiny_files, expert_files, tau=["tau_source", 0])
    graph["tau_source"] = {"class_type": executor.SOURCE_NODE, "inputs": {"key": "tau"}}
    executor.sources["tau"] = tau
    message = _run(runner, graph)
    assert message.startswith("BranchWanSampler: tau must be within [0, 1]") and "0.5" in message


def test_expert_for_another_model_size(runner, tiny_files, expert_files, clip_sources):
    experts = {"effect": expert_files["other_size"], "quality": "none"}
    message = _run(runner, chain_graph(tiny_files, experts))
    assert message.startswith("BranchWanSampler:") and "dim 256" in message and "dim 128" in message
    assert "train an expert for this one" in message
    mixed = {"effect": expert_files["other_size"], "quality": expert_files["quality"]}
    message = _run(runner, chain_graph(tiny_files, mixed))
    assert message.startswith("LoadOmnimatteExperts:") and "different models" in message


def test_expert_roles_and_choices(runner, tiny_files, expert_files, clip_sources):
    swapped = {"effect": expert_files["quality"], "quality": expert_files["effect"]}
    message = _run(runner, chain_graph(tiny_files, swapped))
    assert message.startswith("LoadOmnimatteExperts:") and "Swap the two file choices" in message
    for single in ({"effect": expert_files["effect"], "quality": "none"},
                   {"effect": "none", "quality": expert_files["quality"]}):
        result = runner.run(chain_graph(tiny_files, single, steps=1))
        assert result.success, result.error_message()


def test_no_expert_samples_the_background_alone_as_the_pair_would(runner, tiny_files, expert_files, clip_sources,
                                                                    caplog):
    """Both experts 'none': the stock remover on the background row only; masks B/C keep the pair's background
    row equal to it, so the two runs' backgrounds agree; the alpha is empty and said to be."""
    import logging

    pair = runner.run(chain_graph(tiny_files, expert_files, steps=2))
    assert pair.success, pair.error_message()
    with caplog.at_level(logging.WARNING):
        alone = runner.run(chain_graph(tiny_files, {"effect": "none", "quality": "none"}, steps=2))
    assert alone.success, alone.error_message()
    got, want = alone.captured["bg_latent"]["samples"], pair.captured["bg_latent"]["samples"]
    assert got.shape == want.shape and got.shape[0] == 1
    assert (got - want).abs().max() <= 1e-4 * want.abs().max()
    assert not (alone.captured["alpha"] != 0).any() and "background-only" in caplog.text
    assert alone.captured["background"].shape == pair.captured["background"].shape


def test_clip_vision_missing_for_i2v_or_given_to_t2v(runner, tiny_files, expert_files, clip_sources):
    message = _run(runner, chain_graph(tiny_files, expert_files, clip=False))
    assert message.startswith("BranchWanSampler: the MODEL has image embeddings") and "CLIPVisionEncode" in message
    message = _run(runner, chain_graph(tiny_files, expert_files, model="t2v", clip=True))
    assert "the MODEL has no image" in message and "Disconnect clip_vision_output" in message
    result = runner.run(chain_graph(tiny_files, expert_files, model="t2v", clip=False, steps=1))
    assert result.success, result.error_message()


def test_model_with_core_context_windows_is_refused(runner, tiny_files, expert_files, clip_sources):
    graph = chain_graph(tiny_files, expert_files)
    graph["windows"] = {"class_type": "WanContextWindowsManual",
                        "inputs": {**executor.widget_defaults("WanContextWindowsManual"), "model": ["shift", 0]}}
    graph["sampler"]["inputs"]["model"] = ["windows", 0]
    assert runner.validate(graph)[3] == {}
    message = _run(runner, graph)
    assert message.startswith("BranchWanSampler:") and "context windows" in message and "Remove that node" in message


def test_latent_and_conditioning_not_from_omnimatte_conditioning(runner, tiny_files, expert_files, clip_sources):
    graph = chain_graph(tiny_files, expert_files)
    graph["empty"] = {"class_type": "EmptyHunyuanLatentVideo",
                      "inputs": {"width": 48, "height": 32, "length": 13, "batch_size": 2}}
    graph["sampler"]["inputs"]["latent"] = ["empty", 0]
    message = _run(runner, graph)
    assert message.startswith("BranchWanSampler: 'latent' must be the [background, alpha] latent")
    graph = chain_graph(tiny_files, expert_files)
    graph["sampler"]["inputs"]["positive"] = ["positive", 0]
    message = _run(runner, graph)
    assert "BranchWanSampler: 'positive' has no video latent or trimask" in message


def test_changed_expert_file_is_reloaded(runner, core, tiny_files, expert_files, comfy_dirs, clip_sources):
    folder = comfy_dirs / "models" / "omnimatte"
    base = core.experts.BaseSignature(dim=128, num_layers=4, in_dim=36)
    path = folder / "tiny_changing.safetensors"
    experts = {"effect": "none", "quality": path.name}
    core.expert_file.save_expert(core.experts.zero_lora_expert("quality", base, rank=4, seed=1, init_std=0.5), path)
    first = runner.run(chain_graph(tiny_files, experts, steps=2)).captured["alpha_latent"]["samples"]
    same = runner.run(chain_graph(tiny_files, experts, steps=2)).captured["alpha_latent"]["samples"]
    assert torch.equal(first, same)
    core.expert_file.save_expert(core.experts.zero_lora_expert("quality", base, rank=4, seed=2, init_std=0.5), path)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    changed = runner.run(chain_graph(tiny_files, experts, steps=2)).captured["alpha_latent"]["samples"]
    assert not torch.equal(first, changed)
