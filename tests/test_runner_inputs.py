"""The headless runner on real footage as a new user types it: relative paths from the clip's folder,
broken and suspicious files, repeated masks, clean refusals (issue: real footage through the runner).

The runs use the embedded toy models at a small working size; refusals happen before ComfyUI loads.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from harness.data import faststart_copy, mapped_clip, shared_clips, text_as_video, truncated_copy
from omnimatte_eval.clips import cut_clip
from omnimatte_host.comfy_host import PACK_DIR

RUN_SH = PACK_DIR / "scripts" / "run.sh"
FRAMES, HEIGHT, WIDTH = 17, 384, 640
TOY_FAST = ["--toy", "--width", "64", "--height", "48", "--steps", "1"]
NOISE = ("Traceback", "!!! Exception", "PromptServer")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    """A user's folder: 17 frames of boys-beach, its two masks, and broken or wrong variants."""
    folder = tmp_path_factory.mktemp("user_clip")
    source = shared_clips() / "boys-beach"
    for name in ("input_video", "mask_00", "mask_01"):
        cut_clip(source / f"{name}.mp4", folder / f"{name}.mp4", FRAMES)
    fast = faststart_copy(source / "input_video.mp4", folder / "faststart.mp4")
    truncated_copy(fast, folder / "faststart_cut.mp4", 0.6)
    truncated_copy(source / "input_video.mp4", folder / "cut.mp4", 0.6)
    text_as_video(folder / "notes.mp4")
    mapped_clip(folder / "mask_00.mp4", folder / "mask_white.mp4", lambda a: a * 0 + 255)
    mapped_clip(folder / "mask_00.mp4", folder / "mask_inverted.mp4", lambda a: 255 - a)
    mapped_clip(folder / "mask_00.mp4", folder / "mask_black.mp4", lambda a: a * 0)
    return folder


def run_sh(args: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RUN_SH), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_py(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "omnimatte_run.run_workflow", *args], cwd=PACK_DIR, capture_output=True,
                          text=True, timeout=timeout)


def _video(path: Path) -> tuple[int, int, int, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        return len(frames), frames[0].height, frames[0].width, float(stream.average_rate)


def assert_layers(folder: Path) -> None:
    """A full decomposition at the source's size, frame count and rate."""
    for layer, mode in (("rgba", "RGBA"), ("alpha", "L")):
        pngs = sorted((folder / layer).glob("*.png"))
        assert len(pngs) == FRAMES, (layer, len(pngs))
        with Image.open(pngs[0]) as image:
            assert image.mode == mode and image.size == (WIDTH, HEIGHT)
    assert _video(folder / "background" / "background.mp4") == (FRAMES, HEIGHT, WIDTH, 16.0)


# -- 1. relative paths mean the user's folder -------------------------------------------------------

def test_quick_start_runs_from_the_clips_folder_with_relative_paths(clip_dir):
    models = clip_dir / "my_models" / "vae"
    models.mkdir(parents=True)
    (clip_dir / "extra.yaml").write_text(f"mine:\n  vae: {models}\n")
    before = set(PACK_DIR.iterdir())
    args = ["--video", "input_video.mp4", "--mask", "mask_00.mp4", "--out", "layers/",
            "--extra-model-paths", "extra.yaml", *TOY_FAST]
    first = run_sh(args, clip_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    assert_layers(clip_dir / "layers" / "input_video-mask_00")
    assert set(PACK_DIR.iterdir()) == before  # nothing landed in the pack
    assert "Layers written to" in first.stdout and "input_video-mask_00/  " in first.stdout, first.stdout
    assert f"{FRAMES} frames at" in first.stdout and "--json" in first.stdout, first.stdout
    second = run_sh([*args, "--json"], clip_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    assert_layers(clip_dir / "layers" / "input_video-mask_00-2")  # a new folder, not mixed into the first
    assert len(list((clip_dir / "layers" / "input_video-mask_00" / "rgba").iterdir())) == FRAMES
    result = json.loads(second.stdout[second.stdout.index("{"):])
    assert all(f.startswith("input_video-mask_00-2/") for f in result["files"])


# -- 3. broken files are named before anything loads ------------------------------------------------

@pytest.mark.parametrize("role", ["video", "mask"])
@pytest.mark.parametrize("broken, expected", [
    ("cut.mp4", "is not a readable video"),
    ("notes.mp4", "is not a readable video"),
    ("faststart_cut.mp4", "of the 85 frames the file declares"),
])
def test_broken_files_are_refused_naming_the_input(clip_dir, role, broken, expected):
    files = {"video": clip_dir / "input_video.mp4", "mask": clip_dir / "mask_00.mp4", role: clip_dir / broken}
    done = run_py(["--video", str(files["video"]), "--mask", str(files["mask"]), "--out",
                   str(clip_dir / "refused"), *TOY_FAST])
    assert done.returncode == 2, done.stderr[-2000:]
    name = {"video": "Input video", "mask": "Object mask"}[role]
    assert f"{name} {clip_dir / broken}" in done.stderr and expected in done.stderr
    if broken == "faststart_cut.mp4":
        assert "decoded 48 of the 85" in done.stderr and "--allow-truncated" in done.stderr
    assert not any(n in done.stderr for n in NOISE), done.stderr


def test_allow_truncated_uses_what_decodes_and_then_checks_the_mask_length(clip_dir):
    done = run_py(["--video", str(clip_dir / "faststart_cut.mp4"), "--mask", str(clip_dir / "mask_00.mp4"),
                   "--out", str(clip_dir / "refused"), "--allow-truncated", *TOY_FAST])
    assert done.returncode == 2
    assert "decoded 48 of the 85" in done.stderr  # said as a warning
    assert "has 17 frames but the input video has 48" in done.stderr


def test_video_frames_node_refuses_a_cut_off_file_unless_allowed(runner, comfy_dirs, clip_dir):
    import shutil

    shutil.copy(clip_dir / "faststart_cut.mp4", comfy_dirs / "input" / "faststart_cut.mp4")
    graph = {"load": {"class_type": "LoadVideo", "inputs": {"file": "faststart_cut.mp4"}},
             "frames": {"class_type": "OmnimatteVideoFrames", "inputs": {"video": ["load", 0], "width": 64,
                                                                         "height": 48, "allow_truncated": False}},
             "capture": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["frames", 0], "key": "frames"}}}
    refused = runner.run(graph)
    assert not refused.success
    assert "OmnimatteVideoFrames" in refused.error_message() and "decoded 48 of the 85" in refused.error_message()
    graph["frames"]["inputs"]["allow_truncated"] = True
    allowed = runner.run(graph)
    assert allowed.success, allowed.error_message()
    assert allowed.captured["frames"].shape == (48, 48, 64, 3)


# -- 4. masks that are almost surely wrong ----------------------------------------------------------

@pytest.mark.parametrize("video, mask, expected", [
    ("input_video.mp4", "mask_white.mp4", "probably inverted"),
    ("input_video.mp4", "mask_inverted.mp4", "probably inverted"),
    ("mask_00.mp4", "input_video.mp4", "swapped"),
])
def test_strict_stops_on_suspicious_masks(clip_dir, video, mask, expected):
    done = run_py(["--video", str(clip_dir / video), "--mask", str(clip_dir / mask), "--out",
                   str(clip_dir / "refused"), "--strict", *TOY_FAST])
    assert done.returncode == 2, done.stderr[-2000:]
    assert "WARNING input check:" in done.stderr and expected in done.stderr and "--strict" in done.stderr
    assert not any(n in done.stderr for n in NOISE)


def test_suspicious_mask_warns_and_runs_without_strict(clip_dir, tmp_path):
    done = run_py(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_inverted.mp4"),
                   "--out", str(tmp_path), *TOY_FAST])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "probably inverted" in done.stderr  # the runner's check
    assert "OmnimatteConditioning: the object mask covers more than 90%" in done.stderr  # the node's own
    assert_layers(tmp_path / "input_video-mask_inverted")


# -- 5. several masks -------------------------------------------------------------------------------

def test_repeated_masks_give_a_folder_per_object_and_one_for_all(clip_dir, tmp_path):
    done = run_sh(["--video", "input_video.mp4", "--mask", "mask_00.mp4", "--mask", "mask_01.mp4",
                   "--out", str(tmp_path), *TOY_FAST], cwd=clip_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "object mask mask_00 17 frames" in done.stderr and "object mask mask_01 17 frames" in done.stderr
    for folder in ("input_video", "input_video-mask_00", "input_video-mask_01"):  # all objects; each object
        assert_layers(tmp_path / folder)
    alphas = [np.stack([np.asarray(Image.open(p)) for p in sorted((tmp_path / f"input_video-{m}" / "alpha").glob("*.png"))])
              for m in ("mask_00", "mask_01")]
    assert not np.array_equal(alphas[0], alphas[1])


def test_repeated_masks_are_checked_and_refused_where_they_cannot_work(clip_dir):
    broken = run_py(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_00.mp4"),
                     "--mask", str(clip_dir / "notes.mp4"), *TOY_FAST])
    assert broken.returncode == 2 and "Object mask notes" in broken.stderr and "not a readable video" in broken.stderr
    same = run_py(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_00.mp4"),
                   "--mask", str(clip_dir / "mask_00.mp4"), *TOY_FAST])
    assert same.returncode == 2 and "two --mask files have the same name" in same.stderr
    plate = run_py(["--workflow", "clean_plate_matte", "--video", str(clip_dir / "input_video.mp4"),
                    "--mask", str(clip_dir / "mask_00.mp4"), "--mask", str(clip_dir / "mask_01.mp4"), *TOY_FAST])
    assert plate.returncode == 2 and "--workflow clean_plate_matte takes one object" in plate.stderr


def test_keep_mask_reaches_the_conditioning(clip_dir, tmp_path):
    from omnimatte_workflows import workflow_format as wf
    from omnimatte_run.prompts import build_prompt
    from omnimatte_run.run_workflow import parse_args

    args = parse_args(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_00.mp4"),
                       "--keep-mask", str(clip_dir / "mask_01.mp4"), "--width", "64", "--height", "48"])
    prompt = build_prompt(args, {"Input video": "a.mp4", "Object mask video": "b.mp4", wf.KEEP_MASK_TITLE: "c.mp4"})
    cond = next(n for n in prompt.values() if n["class_type"] == "OmnimatteConditioning")
    mask_node = prompt[cond["inputs"]["keep_mask"][0]]
    frames_node = prompt[mask_node["inputs"]["image"][0]]
    assert frames_node["class_type"] == "OmnimatteVideoFrames" and frames_node["inputs"]["width"] == 64
    assert prompt[frames_node["inputs"]["video"][0]]["inputs"]["file"] == "c.mp4"
    done = run_py(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_00.mp4"),
                   "--keep-mask", str(clip_dir / "mask_01.mp4"), "--out", str(tmp_path), *TOY_FAST])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keep mask 17 frames" in done.stderr
    assert_layers(tmp_path / "input_video-mask_00")


# -- 6. clean refusals ------------------------------------------------------------------------------

def test_replace_background_without_new_background_names_the_flag(clip_dir):
    done = run_py(["--workflow", "replace_background", "--video", str(clip_dir / "input_video.mp4"),
                   "--mask", str(clip_dir / "mask_00.mp4")])
    assert done.returncode == 2
    assert "needs --new-background PATH" in done.stderr and "new_background.mp4" not in done.stderr


def test_a_failing_node_gives_one_clean_line_and_the_traceback_goes_to_the_log(clip_dir, tmp_path):
    done = run_py(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_black.mp4"),
                   "--out", str(tmp_path), *TOY_FAST])
    assert done.returncode == 2, done.stderr[-3000:]
    assert "the object mask is black in every sampled frame" in done.stderr  # warned first
    assert "OmnimatteConditioning failed: OmnimatteConditioning: the object mask is empty" in done.stderr
    assert not any(n in done.stderr for n in NOISE), done.stderr
    log_text = (tmp_path / "omnimatte-run.log").read_text()
    assert "Traceback (most recent call last)" in log_text and "!!! Exception during processing" in log_text
    assert not list(tmp_path.glob("input_video-mask_black*"))  # nothing half-written


def test_runner_writes_prores_4444_with_alpha_at_source_size(clip_dir, tmp_path):
    done = run_py(["--video", str(clip_dir / "input_video.mp4"), "--mask", str(clip_dir / "mask_00.mp4"),
                   "--out", str(tmp_path), "--rgba-format", "prores4444", *TOY_FAST])
    assert done.returncode == 0, done.stderr[-3000:]
    movie = tmp_path / "input_video-mask_00" / "rgba" / "rgba.mov"
    with av.open(str(movie)) as container:
        stream = container.streams.video[0]
        frames = list(container.decode(stream))
        assert stream.codec_context.name == "prores" and "a" in frames[0].format.name  # yuva: alpha kept
    assert len(frames) == FRAMES and (frames[0].width, frames[0].height) == (WIDTH, HEIGHT)
