"""The Wan VAE fed and drained a few frames at a time (omnimatte_core.vae_stream) gives exactly what
ComfyUI's whole-clip ``VAE.encode``/``VAE.decode`` give, on the real host VAE, and leaves the VAE
other nodes hold untouched."""

from __future__ import annotations

import pytest
import torch

FRAME_COUNTS = (1, 5, 6, 23)  # one frame, 4n+1, padded, several encoder/decoder chunks


def _inputs(core, frames: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(frames, 40, 56, 3, generator=g)  # source size ≠ working size: resized per chunk
    mask = torch.zeros(frames, 40, 56)
    mask[:, 8:24, 16:40] = 1.0
    return core.conditioning.casper_inputs(video, [mask], None, height=32, width=48, dilation_px=1, threshold=0.5)


@pytest.mark.parametrize("frames", FRAME_COUNTS)
def test_streamed_encode_equals_the_whole_clip_encode(core, tiny_vae, frames):
    inputs = _inputs(core, frames)
    assert core.vae_stream.streams(tiny_vae)
    before = core.vae_stream.fallback_counts()
    with torch.inference_mode():
        whole = tiny_vae.encode(inputs.video)
        streamed = core.vae_stream.encode(tiny_vae, inputs.source.padded_frames, 32, 48, inputs.working_frames)
    assert core.vae_stream.fallback_counts() == before, "the streamed encode fell back to the whole clip"
    assert streamed.shape == whole.shape == (1, 16, (inputs.source.padded_frames - 1) // 4 + 1, 4, 6)
    assert torch.equal(streamed, whole)


@pytest.mark.parametrize("frames", FRAME_COUNTS)
def test_streamed_decode_equals_the_whole_clip_decode(core, tiny_vae, frames):
    inputs = _inputs(core, frames, seed=1)
    to_layer = lambda f: core.conditioning.layers_to_source(f, inputs.source).clamp(0, 1)  # noqa: E731
    before = dict(tiny_vae.first_stage_model.named_children())
    fallbacks = core.vae_stream.fallback_counts()
    with torch.inference_mode():
        latent = tiny_vae.encode(inputs.video) + 0.3 * torch.randn(1, 16, (inputs.source.padded_frames - 1) // 4 + 1,
                                                                   4, 6, generator=torch.Generator().manual_seed(2))
        decoded = tiny_vae.decode(latent)
        whole = to_layer(decoded.reshape(-1, *decoded.shape[-3:]))
        chunks = []
        streamed = core.vae_stream.decode_to_source(tiny_vae, latent, frames, to_layer)
        core.vae_stream.decode(tiny_vae, latent, lambda first, f: chunks.append((first, len(f))))
    assert core.vae_stream.fallback_counts() == fallbacks, "the streamed decode fell back to the whole clip"
    assert streamed.shape == whole.shape == (frames, 40, 56, 3)
    assert torch.equal(streamed, whole)
    assert chunks[0][0] == 0 and all(a + n == b for (a, n), (b, _) in zip(chunks, chunks[1:]))  # in order
    assert sum(n for _, n in chunks) == inputs.source.padded_frames
    if inputs.source.padded_frames > 5:
        assert len(chunks) > 2 and max(n for _, n in chunks) <= 8  # a few frames at a time, never all
    assert dict(tiny_vae.first_stage_model.named_children()) == before  # the shared VAE keeps its decoder


def test_lazy_clip_refuses_what_it_cannot_stream(core):
    clip = core.vae_stream.LazyClip(9, 8, 8, lambda i: torch.zeros(len(i), 8, 8, 3),
                                    lambda f: f.movedim(-1, 0).unsqueeze(0))
    assert clip[:, :, 1:3, :, :].shape == (1, 3, 2, 8, 8)
    for key in ((slice(None), slice(None), 2, slice(None), slice(None)), (slice(None), slice(0, 1)),
                (slice(None), slice(None), slice(0, 9, 2), slice(None), slice(None))):
        with pytest.raises(core.vae_stream.UnsupportedLoop):
            clip[key]


def test_a_fall_back_to_the_whole_clip_is_counted_and_still_exact(core, tiny_vae, monkeypatch):
    """The fall-backs work, so only their count shows that the streamed path did not run."""
    inputs = _inputs(core, 5, seed=3)

    def refuse(self, key):
        raise core.vae_stream.UnsupportedLoop("a host loop that indexes differently")

    def out_of_memory(self, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(core.vae_stream.LazyClip, "__getitem__", refuse)
    monkeypatch.setattr(core.vae_stream._SinkDecoder, "forward", out_of_memory)
    before = core.vae_stream.fallback_counts()
    with torch.inference_mode():
        whole = tiny_vae.encode(inputs.video)
        latent = core.vae_stream.encode(tiny_vae, inputs.source.padded_frames, 32, 48, inputs.working_frames)
        decoded = core.vae_stream.decode_to_source(tiny_vae, latent, None, lambda f: f)
    assert torch.equal(latent, whole) and decoded.shape[0] == inputs.source.padded_frames
    after = core.vae_stream.fallback_counts()
    for kind in ("encode_unsupported_loop", "decode_out_of_memory"):
        assert after.get(kind, 0) == before.get(kind, 0) + 1, kind


def test_the_long_video_benchmark_reports_fall_backs():
    from benchmarks.long_video import fallback_totals

    rows = [{"vae_stream_fallbacks": {}}, {"vae_stream_fallbacks": {"decode_out_of_memory": 2}}]
    assert fallback_totals(rows, {"encode_out_of_memory": 1}) == {"decode_out_of_memory": 2,
                                                                   "encode_out_of_memory": 1}
    assert fallback_totals([{"vae_stream_fallbacks": {}}], {}) == {}
