"""Layers at source resolution without holding the source: the working-size frames node and the
streaming layer writer against the all-in-memory path they replace."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from harness.data import shared_clips
from omnimatte_eval.clips import cut_clip

FRAMES, HEIGHT, WIDTH = 17, 384, 640
WORK_H, WORK_W = 48, 80


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("source_res")
    source = shared_clips() / "boys-beach"
    return {"video": cut_clip(source / "input_video.mp4", folder / "beach.mp4", FRAMES),
            "background": cut_clip(source / "input_video.mp4", folder / "short_bg.mp4", 5)}


@pytest.fixture(scope="module")
def working_layers(core, clip):
    """Plausible working-size layers: the clip itself downsized as 'background', a smooth alpha ramp."""
    frames = torch.cat(list(core.video_files.iter_chunks(str(clip["video"]), 8)))
    background = core.frame_geometry.resize_frames(frames, WORK_H, WORK_W)
    ramp = torch.linspace(0, 1, WORK_W).expand(WORK_H, WORK_W)
    alpha = torch.stack([(ramp + 0.02 * i).clamp(0, 1) for i in range(FRAMES)])
    return frames, background, alpha


def _pngs(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def _decode(path: Path) -> tuple[torch.Tensor, float]:
    with av.open(str(path)) as container:
        rate = float(container.streams.video[0].average_rate)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    return torch.from_numpy(np.stack(frames)).float() / 255, rate


def test_streamed_layers_equal_the_all_in_memory_recovery(core, clip, working_layers, tmp_path):
    frames, background, alpha = working_layers
    request = core.layer_writer.WriteRequest(tmp_path / "run", ("rgba", "alpha", "background"), Fraction(16))
    files = core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 5), background, alpha,
                                           request)
    assert {k: len(v) for k, v in files.items()} == {"rgba": FRAMES, "alpha": FRAMES, "background": 1}
    big_bg = core.frame_geometry.resize_frames(background, HEIGHT, WIDTH).clamp(0, 1)
    big_alpha = core.frame_geometry.resize_frames(alpha.unsqueeze(-1), HEIGHT, WIDTH)[..., 0].clamp(0, 1)
    foreground = core.layers.recover_foreground(frames, big_bg, big_alpha)
    expected = core.layer_writer.to_uint8(core.layers.rgba(foreground, big_alpha))
    rgba = _pngs(tmp_path / "run" / "rgba")
    assert rgba.shape == (FRAMES, HEIGHT, WIDTH, 4)
    assert Image.open(files["rgba"][0]).info["Alpha"] == "straight (unpremultiplied)"
    assert np.abs(rgba.astype(int) - expected.astype(int)).max() <= 1  # chunking changes nothing
    assert np.array_equal(_pngs(tmp_path / "run" / "alpha"), core.layer_writer.to_uint8(big_alpha))
    plate, rate = _decode(tmp_path / "run" / "background" / "background.mp4")
    assert plate.shape == (FRAMES, HEIGHT, WIDTH, 3) and rate == 16.0
    assert core.metrics.region_psnr(plate, big_bg) > 38.0  # H.264 crf 12: visually lossless


# Read-back bars: the format's quantisation where lossless (alpha max, colour mean = 2 steps); VP9 is
# lossy, measured 1.67/255 alpha max and 1.97/255 colour mean on this clip (2026-11-30).
@pytest.mark.parametrize("rgba_format, alpha_max, colour_mean", [
    ("png16", 1 / 65535, 2 / 65535), ("prores4444", 2 / 1023, 4 / 1023), ("webm_vp9", 2.5 / 255, 2.5 / 255)])
def test_rgba_formats_read_back_with_their_alpha(core, clip, working_layers, tmp_path, rgba_format, alpha_max,
                                                 colour_mean):
    frames, background, alpha = working_layers
    request = core.layer_writer.WriteRequest(tmp_path / "run", ("rgba", "alpha"), Fraction(16), rgba_format=rgba_format)
    files = core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 8), background, alpha,
                                           request)
    big_bg = core.frame_geometry.resize_frames(background, HEIGHT, WIDTH).clamp(0, 1)
    big_alpha = core.frame_geometry.resize_frames(alpha.unsqueeze(-1), HEIGHT, WIDTH)[..., 0].clamp(0, 1)
    foreground = core.layers.recover_foreground(frames, big_bg, big_alpha)
    decoded = [d for path in files["rgba"] for d in core.video_files.iter_rgba(str(path))]
    expected_files = {"png16": (FRAMES, ".png"), "prores4444": (1, ".mov"), "webm_vp9": (1, ".webm")}[rgba_format]
    assert (len(files["rgba"]), files["rgba"][0].suffix) == expected_files
    rgba = torch.from_numpy(np.stack(decoded).astype(np.float32) / 65535)
    assert rgba.shape == (FRAMES, HEIGHT, WIDTH, 4)
    assert (rgba[..., 3] - big_alpha).abs().max() <= alpha_max  # alpha kept to the format's quantisation
    assert (rgba[..., :3] - foreground).abs().mean() <= colour_mean  # so are the straight colours
    if rgba_format == "png16":  # every RGBA file says its alpha is straight
        assert Image.open(files["rgba"][0]).info["Alpha"] == "straight (unpremultiplied)"
    else:
        with av.open(str(files["rgba"][0])) as container:
            tags = {key.lower(): value for key, value in container.metadata.items()}  # WebM writes COMMENT
            assert tags.get("comment") == "alpha: straight (unpremultiplied)"
    grey = np.stack([d for path in files["alpha"] for d in _png16(path, "gray16le")])
    if rgba_format == "webm_vp9":  # an 8-bit format: alpha/ stays 8-bit PNG
        assert np.array_equal(grey // 257, core.layer_writer.to_uint8(big_alpha))
    else:
        assert grey.dtype == np.uint16 and np.abs(grey / 65535 - big_alpha.numpy()).max() <= 1 / 65535


def test_vp9_alpha_needs_the_libvpx_decoder(core, clip, working_layers, tmp_path):
    """FFmpeg's native vp9 decoder reads the same file as opaque: why iter_rgba uses libvpx."""
    frames, background, alpha = working_layers
    request = core.layer_writer.WriteRequest(tmp_path / "run", ("rgba",), Fraction(16), rgba_format="webm_vp9")
    files = core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 8), background, alpha,
                                           request)
    with av.open(str(files["rgba"][0])) as container:
        native = [f.to_ndarray(format="rgba") for f in container.decode(video=0)]
    assert len(native) == FRAMES and all((frame[..., 3] == 255).all() for frame in native)
    assert min(int(frame[..., 3].min()) for frame in core.video_files.iter_rgba(str(files["rgba"][0]))) < 1000


def _png16(path: Path, fmt: str = "rgba64le") -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format=fmt) for f in container.decode(video=0)]


def test_composite_loops_a_short_new_background(core, clip, working_layers, tmp_path):
    frames, background, alpha = working_layers
    request = core.layer_writer.WriteRequest(tmp_path / "run", ("composite",), Fraction(16))
    new_bg = core.layer_writer.frames_forever(lambda: core.video_files.iter_chunks(str(clip["background"]), 2),
                                              loop=True)
    clear = torch.zeros_like(alpha)  # α = 0: the composite is the new background alone
    core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 8), background, clear,
                                   request, new_bg)
    composite, _ = _decode(tmp_path / "run" / "composite" / "composite.mp4")
    assert composite.shape == (FRAMES, HEIGHT, WIDTH, 3)
    assert core.metrics.region_psnr(composite[0], composite[5]) > 35.0  # frame 5 is frame 0 of the 5-frame loop again
    assert core.metrics.region_psnr(composite[0], composite[3]) < 30.0  # and the clip moves in between


def test_frame_count_mismatch_is_refused_and_leaves_no_files(core, clip, working_layers, tmp_path):
    frames, background, alpha = working_layers
    request = core.layer_writer.WriteRequest(tmp_path / "run", ("rgba", "background"), Fraction(16))
    with pytest.raises(core.layer_writer.LayerWriteError, match="has 17 frames but the layers have 20"):
        core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 8),
                                       torch.cat([background, background[:3]]), torch.cat([alpha, alpha[:3]]),
                                       request)
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    with pytest.raises(core.layer_writer.LayerWriteError, match="more frames than the layers"):
        core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 8), background[:9],
                                       alpha[:9], request)


def test_unique_folder_never_reuses_a_folder_with_files(core, tmp_path):
    target = tmp_path / "clip-mask"
    assert core.layer_writer.unique_folder(target) == target
    target.mkdir()
    assert core.layer_writer.unique_folder(target) == target  # empty: usable
    (target / "x.png").write_bytes(b"")
    assert core.layer_writer.unique_folder(target).name == "clip-mask-2"


def test_frames_node_matches_core_decoding_at_working_size(runner, core, comfy_dirs, clip):
    shutil.copy(clip["video"], comfy_dirs / "input" / "beach_src.mp4")
    graph = {"load": {"class_type": "LoadVideo", "inputs": {"file": "beach_src.mp4"}},
             "stock": {"class_type": "GetVideoComponents", "inputs": {"video": ["load", 0]}},
             "ours": {"class_type": "OmnimatteVideoFrames", "inputs": {"video": ["load", 0], "width": WORK_W,
                                                                       "height": WORK_H, "allow_truncated": False}},
             "c_stock": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["stock", 0], "key": "stock"}},
             "c_ours": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["ours", 0], "key": "ours"}},
             "c_fps": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["ours", 1], "key": "fps"}},
             "c_n": {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["ours", 2], "key": "n"}}}
    result = runner.run(graph)
    assert result.success, result.error_message()
    stock = core.frame_geometry.resize_frames(result.captured["stock"], WORK_H, WORK_W).clamp(0, 1)
    ours = result.captured["ours"]
    assert ours.shape == stock.shape == (FRAMES, WORK_H, WORK_W, 3)
    assert (ours - stock).abs().mean().item() < 2 / 255  # rgb24 vs float decoding: rounding only
    assert result.captured["fps"] == 16.0 and result.captured["n"] == FRAMES


@pytest.mark.parametrize("layer, writer", [("background", "EncodedVideo"), ("alpha", "PngSequence")])
def test_a_close_error_after_every_frame_was_written_raises_and_keeps_nothing(core, clip, working_layers, tmp_path,
                                                                             monkeypatch, layer, writer):
    """Closing flushes the encoder and the pending PNGs: a full disk there leaves truncated files behind."""
    frames, background, alpha = working_layers
    cls = getattr(core.layer_writer, writer)
    real_close = cls.close

    def close_then_disk_full(self):
        real_close(self)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cls, "close", close_then_disk_full)
    request = core.layer_writer.WriteRequest(tmp_path / "run", (layer, "rgba"), Fraction(16))
    with pytest.raises(core.layer_writer.LayerWriteError) as caught:
        core.layer_writer.write_layers(core.video_files.iter_chunks(str(clip["video"]), 8), background, alpha,
                                       request)
    message = str(caught.value)
    assert f"'{layer}'" in message and str(tmp_path / "run") in message and "No space left" in message
    assert "free space" in message
    assert not [p for p in (tmp_path / "run").rglob("*") if p.is_file()], "a truncated layer file was left behind"
