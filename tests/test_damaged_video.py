"""A video damaged part-way is never taken silently: a decode error mid-file is a warning with the frame it
stopped at, and Video Frames at Working Size checks a trimmed file (Trim Video, a VIDEO with a trim window)
against the frames its header declares inside the window, refusing it unless allow_truncated is on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness import executor
from harness.data import faststart_copy, shared_clips, truncated_copy

DAMAGE_AT, DAMAGE_BYTES = 0.3, 20000  # zeroed bytes 30 % into the file: h264 stops decoding at frame 24 of 85


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    whole = faststart_copy(shared_clips() / "boys-beach" / "input_video.mp4", folder / "whole.mp4")
    data = bytearray(whole.read_bytes())
    at = int(len(data) * DAMAGE_AT)
    data[at:at + DAMAGE_BYTES] = bytes(DAMAGE_BYTES)
    (folder / "damaged.mp4").write_bytes(bytes(data))
    return {"whole": whole, "damaged": folder / "damaged.mp4", "cut": truncated_copy(whole, folder / "cut.mp4", 0.6)}


def _frames(runner, video, allow_truncated: bool):
    executor.sources.update(video=video)
    graph = {"source": {"class_type": "OmnimatteTestSource", "inputs": {"key": "video"}},
             "frames": {"class_type": "OmnimatteVideoFrames", "inputs": {"video": ["source", 0], "width": 64,
                                                                         "height": 48,
                                                                         "allow_truncated": allow_truncated}},
             "capture": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["frames", 0], "key": "frames"}}}
    return runner.run(graph)


def _trimmed(path: Path, start: float, duration: float = 0.0):
    from comfy_api.latest import InputImpl

    return InputImpl.VideoFromFile(str(path), start_time=start, duration=duration)


def test_a_decode_error_part_way_is_a_warning_that_names_the_frame(core, files, caplog):
    stops: list[str] = []
    with caplog.at_level(logging.INFO, logger="omnimatte_core.video_files"):
        decoded = sum(1 for _ in core.video_files.iter_frames(str(files["damaged"]), stops=stops))
    assert 0 < decoded < 85
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warned and f"stops decoding after {decoded} frames" in warned[0] and "damaged" in warned[0]
    assert stops and f"after {decoded} frames" in stops[0]


@pytest.mark.parametrize("name, start, duration", [("damaged", 0.25, 0.0), ("damaged", 0.0, 4.0),
                                                  ("cut", 0.25, 0.0)])
def test_a_trimmed_damaged_or_cut_file_is_refused_unless_allowed(pack, runner, files, caplog, name, start,
                                                                  duration):
    refused = _frames(runner, _trimmed(files[name], start, duration), allow_truncated=False)
    assert not refused.success, "a damaged file was taken without a word"
    message = refused.error_message()
    assert "OmnimatteVideoFrames" in message and ("damaged" in message or "cut off" in message), message
    assert "allow_truncated" in message
    with caplog.at_level(logging.WARNING):
        allowed = _frames(runner, _trimmed(files[name], start, duration), allow_truncated=True)
    assert allowed.success, allowed.error_message()
    assert any("OmnimatteVideoFrames" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


@pytest.mark.parametrize("start, duration", [(0.25, 0.0), (0.5, 2.0), (0.0, 0.0)])
def test_an_intact_trimmed_file_is_taken_without_a_warning(core, pack, runner, files, caplog, start, duration):
    header = core.video_files.probe(str(files["whole"]))
    with caplog.at_level(logging.WARNING):
        result = _frames(runner, _trimmed(files["whole"], start, duration), allow_truncated=False)
    assert result.success, result.error_message()
    expected = core.video_files.frames_in_window(header, start, duration)
    assert abs(result.captured["frames"].shape[0] - expected) <= 1
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "video" in r.getMessage()]
