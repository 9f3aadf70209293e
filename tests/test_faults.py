"""Faults a render meets, through the real ComfyUI server (issue 24): killed while writing the layers,
interrupted from the page while writing, and a disk that fills up. In each, no layer folder that looks
complete may be left behind, the server (where it lives on) stays up, and the next run is whole.

The graph is Save Omnimatte Layers alone on a noise clip (the background is the clip, the alpha its red
channel): no model is needed, and a noise RGBA frame is ≈ 260 KB, so writing takes long enough to be
caught in the middle and is large enough to hit a small file-size limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import av
import numpy as np
import pytest

from omnimatte_host import comfy_host
from omnimatte_host.comfy_server import ComfyServer

COMFY_PATH, PACK_DIR = comfy_host.find_comfyui(), comfy_host.PACK_DIR

FRAMES, SIZE = 96, 256
PARTIAL = ".partial-"


def noise_clip(path: Path, frames: int = FRAMES, size: int = SIZE) -> Path:
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=16)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def save_only_prompt(video_name: str, folder: str) -> dict:
    return {
        "1": {"class_type": "LoadVideo", "inputs": {"file": video_name}},
        "2": {"class_type": "GetVideoComponents", "inputs": {"video": ["1", 0]}},
        "3": {"class_type": "ImageToMask", "inputs": {"image": ["2", 0], "channel": "red"}},
        "4": {"class_type": "SaveOmnimatteLayers",
              "inputs": {"folder": folder, "save_rgba": True, "rgba_format": "png8", "save_alpha": True,
                         "save_background": True, "save_foreground": True, "epsilon": 0.001,
                         "short_background": "loop", "source_video": ["1", 0], "background": ["2", 0],
                         "alpha": ["3", 0]}},
    }


def queue(server: ComfyServer, prompt: dict) -> str:
    status, body = server.post_json("/prompt", {"prompt": prompt, "client_id": "omnimatte-faults"})
    assert status == 200, body
    return body["prompt_id"]


def wait_for(server: ComfyServer, prompt_id: str, timeout_s: float = 300) -> dict:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        history = server.get_json(f"/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            return history[prompt_id]
        time.sleep(0.2)
    raise AssertionError(f"prompt {prompt_id} did not finish in {timeout_s} s:\n{server.log_tail()}")


def wait_for_partial(parent: Path, name: str, timeout_s: float = 240) -> Path:
    """The staging folder of ``name`` once it holds a written file (the save is mid-way)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for stage in parent.glob(f".{name}{PARTIAL}*") if parent.is_dir() else []:
            if any(p.is_file() for p in stage.rglob("*")):
                return stage
        time.sleep(0.01)
    raise AssertionError(f"no staging folder for {name} appeared under {parent}")


def visible_folders(parent: Path) -> list[Path]:
    return sorted(p for p in parent.iterdir() if p.is_dir() and not p.name.startswith(".")) if parent.is_dir() else []


def messages(entry: dict) -> dict:
    return {event: data for event, data in entry["status"].get("messages", [])}


def start_server(base: Path, output: Path, **kwargs) -> ComfyServer:
    base.mkdir(parents=True)
    return ComfyServer(COMFY_PATH, PACK_DIR, base, extra_args=("--output-directory", str(output)), **kwargs).start()


def put_input(server: ComfyServer, clip: Path) -> str:
    (server.base_dir / "input").mkdir(parents=True, exist_ok=True)
    (server.base_dir / "input" / clip.name).write_bytes(clip.read_bytes())
    return clip.name


@pytest.mark.server
def test_a_server_killed_while_saving_leaves_no_complete_folder_and_the_next_run_says_so(tmp_path):
    clip, output = noise_clip(tmp_path / "noise.mp4"), tmp_path / "output"
    first = start_server(tmp_path / "first", output)
    try:
        queue(first, save_only_prompt(put_input(first, clip), "faults/clip"))
        stage = wait_for_partial(output / "faults", "clip")
        first.kill()
    finally:
        first.stop()
    assert visible_folders(output / "faults") == [], "a killed run left a folder that looks like layers"
    assert stage.is_dir()  # the remains are hidden, named as partial
    second = start_server(tmp_path / "second", output)
    try:
        entry = wait_for(second, queue(second, save_only_prompt(put_input(second, clip), "faults/clip")))
        assert entry["status"]["status_str"] == "success", second.log_tail()
        log = second.log_text()
    finally:
        second.stop()
    assert visible_folders(output / "faults") == [output / "faults" / "clip"]
    assert len(list((output / "faults" / "clip" / "rgba").glob("*.png"))) == FRAMES
    assert f"{stage}" in log and "stopped while writing left behind" in log, log[-3000:]


@pytest.mark.server
def test_a_full_disk_is_one_clear_error_and_nothing_is_kept(tmp_path):
    clip, output = noise_clip(tmp_path / "noise.mp4"), tmp_path / "output"
    server = start_server(tmp_path / "server", output, file_size_limit=150_000)  # below one noise RGBA frame
    try:
        entry = wait_for(server, queue(server, save_only_prompt(put_input(server, clip), "faults/full")))
        assert entry["status"]["status_str"] == "error"
        error = messages(entry)["execution_error"]
        assert server.get_json("/object_info/SaveOmnimatteLayers")  # the server is still up
    finally:
        server.stop()
    assert error["node_type"] == "SaveOmnimatteLayers"
    text = error["exception_message"]
    assert str(output / "faults" / "full") in text and "free space" in text and "Nothing was kept" in text, text
    assert "File too large" in text or "Errno 27" in text, text
    assert list((output / "faults").iterdir()) == [], "a failed write left files behind"


@pytest.mark.server
def test_interrupt_from_the_page_while_saving_keeps_nothing_and_the_next_run_is_whole(comfy_server, tmp_path):
    output = comfy_server.base_dir / "output"
    name = put_input(comfy_server, noise_clip(tmp_path / "interrupt_noise.mp4"))
    prompt_id = queue(comfy_server, save_only_prompt(name, "faults/interrupted"))
    wait_for_partial(output / "faults", "interrupted")
    status, _ = comfy_server.post_json("/interrupt", {})
    assert status == 200
    entry = wait_for(comfy_server, prompt_id)
    assert "execution_interrupted" in messages(entry), entry["status"]
    assert not (output / "faults" / "interrupted").exists()
    assert not list((output / "faults").glob(f".interrupted{PARTIAL}*")), "the interrupted run left its staging"
    again = wait_for(comfy_server, queue(comfy_server, save_only_prompt(name, "faults/interrupted")))
    fresh = wait_for(comfy_server, queue(comfy_server, save_only_prompt(name, "faults/fresh")))
    assert again["status"]["status_str"] == fresh["status"]["status_str"] == "success"
    for layer in ("rgba", "alpha"):
        after = sorted((output / "faults" / "interrupted" / layer).glob("*.png"))
        reference = sorted((output / "faults" / "fresh" / layer).glob("*.png"))
        assert len(after) == len(reference) == FRAMES
        assert all(a.read_bytes() == b.read_bytes() for a, b in zip(after, reference)), layer


TOY_API = PACK_DIR / "tests" / "workflows_api" / "toy_world_demo.json"
TOY_STEPS, TOY_WINDOW, TOY_OVERLAP = 100, 9, 4  # 17 toy frames in two windows; ≈ 5 s of sampling to catch
SAMPLER = "8"  # BranchWanSampler's id in the toy demo's API prompt
LOADERS = ("1", "2")  # UNETLoader, ModelSamplingSD3: the base MODEL every run shares from the cache


def windowed_toy_prompt(seed: int, folder: str) -> dict:
    """The toy demo with few steps, two sampler windows, and its layers saved under ``folder``."""
    import json

    prompt = json.loads(TOY_API.read_text())
    prompt[SAMPLER]["inputs"].update(seed=seed, steps=TOY_STEPS, window_frames=TOY_WINDOW, window_overlap=TOY_OVERLAP)
    for node in prompt.values():
        if node["class_type"] == "SaveImage":
            layer = node["inputs"]["filename_prefix"].split("/")[1]
            node["inputs"]["filename_prefix"] = f"{folder}/{layer}/{layer}"
    return prompt


def wait_for_sampler_steps(server: ComfyServer, log_from: int, timeout_s: float = 240) -> None:
    """Until the sampler's progress bar (in the server's log after ``log_from``) shows a step done and not the
    last: the sampler is then inside its windowed model calls. tqdm skips counts, so any count is taken."""
    import re

    done = re.compile(rf" (\d+)/{TOY_STEPS} \[")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counts = [int(n) for n in done.findall(server.log_text()[log_from:])]
        if any(0 < n < TOY_STEPS for n in counts):
            return
        time.sleep(0.02)
    raise AssertionError(f"the sampler's progress never showed a step done:\n{server.log_tail()}")


def layer_pixels(folder: Path) -> dict[str, bytes]:
    """Each saved PNG's pixels (SaveImage embeds the prompt, whose folder names differ between runs)."""
    from PIL import Image

    return {str(p.relative_to(folder)): Image.open(p).tobytes() for p in sorted(folder.rglob("*.png"))}


@pytest.mark.server
def test_interrupt_inside_a_sampler_window_keeps_the_model_and_the_next_run_matches_a_fresh_one(comfy_server):
    output = comfy_server.base_dir / "output" / "faults"
    fresh = wait_for(comfy_server, queue(comfy_server, windowed_toy_prompt(43, "faults/window_fresh")))
    assert fresh["status"]["status_str"] == "success", fresh["status"]
    log_from = len(comfy_server.log_text())
    cut_id = queue(comfy_server, windowed_toy_prompt(44, "faults/window_cut"))
    wait_for_sampler_steps(comfy_server, log_from)
    status, _ = comfy_server.post_json("/interrupt", {})
    assert status == 200
    cut = wait_for(comfy_server, cut_id)
    assert "execution_interrupted" in messages(cut), cut["status"]
    assert messages(cut)["execution_interrupted"]["node_id"] == SAMPLER  # stopped inside the sampler
    assert comfy_server.get_json("/system_stats")["system"], "the server went down"
    assert not (output / "window_cut").exists(), "the interrupted run wrote layers"
    again = wait_for(comfy_server, queue(comfy_server, windowed_toy_prompt(43, "faults/window_again")))
    assert again["status"]["status_str"] == "success", again["status"]
    cached = set(messages(again)["execution_cached"]["nodes"])
    assert set(LOADERS) <= cached, "the base MODEL was reloaded: this run would not show a leftover patch"
    assert SAMPLER not in cached, "the sampler did not run again: nothing was compared"
    before, after = layer_pixels(output / "window_fresh"), layer_pixels(output / "window_again")
    assert len(before) == 4 * 17 and before.keys() == after.keys()
    assert after == before, "the run after an interrupted one differs from the fresh run: state leaked"
