"""One VAE call for all background and alpha rows (omnimatte_core.vae_stream.decode_rows_to_source, used by
OmnimatteDecode when ComfyUI's memory estimate allows) gives what decoding each row on its own gives, on the
real host VAE; without the memory for it, OmnimatteDecode keeps decoding row by row."""

from __future__ import annotations

import pytest
import torch

TOLERANCE = 1e-5  # batched convolutions may sum in another order than single-row ones


def _latent(rows: int, latent_frames: int, seed: int) -> torch.Tensor:
    """[rows, 16, T_lat, 4, 6]: random latents of a 32×48 working size."""
    return torch.randn(rows, 16, latent_frames, 4, 6, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("frames", (5, 23))  # one decoder chunk group; several chunks and time padding dropped
def test_rows_in_one_call_equal_rows_one_by_one(core, tiny_vae, frames):
    source = core.conditioning.SourceInfo(frames=frames, height=40, width=56, padded_frames=(frames + 3) // 4 * 4 + 1)
    latent = _latent(4, (source.padded_frames - 1) // 4 + 1, seed=frames)
    to_plate = lambda f: core.conditioning.layers_to_source(f, source).clamp(0, 1)  # noqa: E731
    to_matte = lambda f: core.layers.alpha_from_decoded(core.conditioning.layers_to_source(f, source))  # noqa: E731
    to_layers = [to_plate, to_plate, to_matte, to_matte]
    with torch.inference_mode():
        batched = core.vae_stream.decode_rows_to_source(tiny_vae, latent, frames, to_layers, [None] * 4)
        single = [core.vae_stream.decode_to_source(tiny_vae, row, frames, f) for row, f in zip(latent.split(1), to_layers)]
    for one, alone in zip(batched, single):
        assert one.shape == alone.shape and one.shape[:3] == (frames, 40, 56)
        torch.testing.assert_close(one, alone, atol=TOLERANCE, rtol=0)
    assert not torch.allclose(batched[0], batched[1])  # the rows are not mixed up: each is its own latent


def _pair_latents(core, rows: int, names: list[str] | None) -> tuple[dict, dict]:
    source = core.conditioning.SourceInfo(frames=9, height=40, width=56, padded_frames=9)
    info = {core.conditioning.SOURCE_KEY: source.to_dict()}
    if names:
        info[core.conditioning.OBJECTS_KEY] = names
    return ({"samples": _latent(rows, 3, seed=5), **info}, {"samples": _latent(rows, 3, seed=6), **info})


@pytest.mark.parametrize("names", (None, ["a", "b"]))  # one pair; two objects (three pairs: each, then both)
def test_decode_node_batches_the_pairs_and_equals_the_row_by_row_path(core, tiny_vae, monkeypatch, names):
    from omnimatte_eval.toy_eval import call_node

    rows = core.conditioning.pair_count(len(names or ["object"]))
    background, alpha = _pair_latents(core, rows, names)
    calls: list[int] = []
    decode_batch = core.vae_stream.decode_batch

    def counted(vae, samples, sink):
        calls.append(samples.shape[0])
        return decode_batch(vae, samples, sink)

    monkeypatch.setattr(core.vae_stream, "decode_batch", counted)
    with torch.inference_mode():
        batched = call_node("OmnimatteDecode", vae=tiny_vae, background=background, alpha=alpha)
        assert calls == [2 * rows]  # one VAE call for every background and alpha row
        calls.clear()
        monkeypatch.setattr(core.vae_stream, "batch_fits", lambda vae, shape: False)
        single = call_node("OmnimatteDecode", vae=tiny_vae, background=background, alpha=alpha)
        assert calls == [1] * (2 * rows)  # the per-row path when the estimate says it does not fit
    for one, alone in zip(batched[:2], single[:2]):
        assert one.shape == alone.shape
        torch.testing.assert_close(one, alone, atol=TOLERANCE, rtol=0)
    torch.testing.assert_close(batched[2].alphas, single[2].alphas, atol=TOLERANCE, rtol=0)


def test_batch_fits_follows_comfy_memory_estimate(core, tiny_vae, monkeypatch):
    import comfy.model_management

    shape = (6, 16, 21, 60, 104)
    needed = core.vae_stream.decode_memory(tiny_vae, shape)
    assert needed == 6 * tiny_vae.memory_used_decode(shape, tiny_vae.vae_dtype) > 0
    monkeypatch.setattr(comfy.model_management, "get_free_memory", lambda *a, **k: needed * 10)
    assert core.vae_stream.batch_fits(tiny_vae, shape)
    monkeypatch.setattr(comfy.model_management, "get_free_memory", lambda *a, **k: needed // 2)
    assert not core.vae_stream.batch_fits(tiny_vae, shape)
