"""The real boys-beach clip through the whole chain on the tiny Wan, with core's video loading."""

from __future__ import annotations

import logging
import shutil


from harness.data import shared_clips
from test_omnimatte_chain import assert_layers_match_source, chain_graph, set_sources


CLIP_DIR = shared_clips() / "boys-beach"
FRAMES, HEIGHT, WIDTH = 85, 384, 640


def _real_clip_graph(files: dict, experts: dict, video_name: str, mask_name: str) -> dict:
    graph = chain_graph(files, experts, steps=2, width=112, height=64)
    graph["load_video"] = {"class_type": "LoadVideo", "inputs": {"file": video_name}}
    graph["load_mask"] = {"class_type": "LoadVideo", "inputs": {"file": mask_name}}
    graph["video"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["load_video", 0]}}
    graph["mask_frames"] = {"class_type": "GetVideoComponents", "inputs": {"video": ["load_mask", 0]}}
    graph["mask"] = {"class_type": "ImageToMask", "inputs": {"image": ["mask_frames", 0], "channel": "red"}}
    graph["cond"]["inputs"]["mask_threshold"] = 0.94  # ≈ Casper's 240/255 for compressed mask videos
    graph["capture_source"] = {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["video", 0],
                                                                                "key": "source"}}
    return graph


def test_boys_beach_comes_back_at_85_frames_640x384(runner, tiny_files, expert_files, comfy_dirs, caplog):
    shutil.copy(CLIP_DIR / "input_video.mp4", comfy_dirs / "input" / "boys-beach.mp4")
    shutil.copy(CLIP_DIR / "mask_00.mp4", comfy_dirs / "input" / "boys-beach_mask_00.mp4")
    set_sources(None, None, seed=6)
    graph = _real_clip_graph(tiny_files, expert_files, "boys-beach.mp4", "boys-beach_mask_00.mp4")
    with caplog.at_level(logging.INFO):
        result = runner.run(graph)
    assert result.success, result.error_message()
    assert "85 frames, more than the 81 Casper was trained on" in caplog.text  # two windows, said out loud
    captured = result.captured
    source = captured["source"]
    assert source.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert_layers_match_source(captured, FRAMES, HEIGHT, WIDTH)
    trimask = captured["trimask"]
    assert trimask.shape == (85, 64, 112)  # 85 = 4·21+1: no padding needed
    object_share = (trimask == 1.0).float().mean().item()
    assert 0.005 < object_share < 0.5  # one boy, dilated: present but not the whole frame
    assert (trimask == 1.0).flatten(1).any(1).sum() >= 80  # he is in (nearly) every frame
