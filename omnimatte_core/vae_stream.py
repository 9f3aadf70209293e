"""Wan VAE encode and decode that hold a few frames at a time, not the whole clip (docs/architecture.md).

ComfyUI's ``VAE.encode`` wants the whole clip as one tensor (plus its [-1, 1] copy and a
channels-first copy), and ``VAE.decode`` returns the whole clip after building it twice (a list of
chunks, then their concatenation). For a 241-frame clip those copies outweigh everything else.

The Wan 2.1 VAE is causal and already runs its own loop over a few frames at a time, carrying a
cache between steps. Here that same loop (the host's ``WanVAE.encode``/``decode``, not a copy of
it) is fed and drained lazily:

- encode: the loop only slices its input in time, so it is given a :class:`LazyClip` whose slices
  are made on demand (resize, mirror padding, [-1, 1], dtype, device) from the caller's frames;
- decode: it runs on a shallow view of the VAE module whose decoder hands each decoded chunk to a
  ``sink`` and returns an empty chunk, so the loop concatenates nothing.

Both give the host's numbers exactly (tests compare with ``vae.encode``/``vae.decode``). Any other
VAE, or a host whose loop does something else with its input, takes the whole-clip path.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import logging
from typing import Callable, Sequence

import torch
import torch.nn as nn

import comfy.model_management

log = logging.getLogger(__name__)

FrameSource = Callable[[torch.Tensor], torch.Tensor]  # frame indices [t] → frames [t, H, W, 3] in [0, 1]
FrameSink = Callable[[int, torch.Tensor], None]  # (first frame, frames [t, H, W, 3] in [0, 1])
RowSink = Callable[[int, int, torch.Tensor], None]  # (row, first frame, frames [t, H, W, 3] in [0, 1])


class LazyClip:
    """Stands in for the [1, 3, T, H, W] pixel tensor the Wan encoder loop slices in time.

    Only ``shape`` and ``[:, :, a:b, :, :]`` are provided: anything else raises, and the caller
    falls back to the whole-clip path.
    """

    def __init__(self, frames: int, height: int, width: int, source: FrameSource, prepare: Callable):
        self.shape = torch.Size((1, 3, frames, height, width))
        self._source = source
        self._prepare = prepare  # [t, H, W, 3] in [0, 1] → [1, 3, t, H, W] as the encoder wants it

    def __getitem__(self, key) -> torch.Tensor:
        if not (isinstance(key, tuple) and len(key) == 5 and all(k == slice(None) for k in key[:2] + key[3:])
                and isinstance(key[2], slice) and key[2].step in (None, 1)):
            raise UnsupportedLoop(f"LazyClip supports [:, :, a:b, :, :] only, got {key!r}")
        start, stop, _ = key[2].indices(self.shape[2])
        return self._prepare(self._source(torch.arange(start, max(start, stop))))


def streams(vae) -> bool:
    """Whether this VAE is the Wan 2.1 VAE with 3 image channels in and out (the one Casper uses)."""
    model = getattr(vae, "first_stage_model", None)
    return (type(model).__module__ == "comfy.ldm.wan.vae" and type(model).__name__ == "WanVAE"
            and getattr(vae, "output_channels", 3) == 3 and getattr(vae, "conv_out_channels", 3) == 3)


def _output_dtype(vae) -> torch.dtype:
    return vae.vae_output_dtype() if hasattr(vae, "vae_output_dtype") else torch.float32


class UnsupportedLoop(TypeError):
    """The host's encoder loop used its input in a way a LazyClip does not provide."""


FALLBACKS: collections.Counter[str] = collections.Counter()  # "encode_unsupported_loop", "encode_out_of_memory",
# "decode_out_of_memory": whole-clip runs since start, so tests and benchmarks can tell the streamed path ran


def _fall_back(kind: str, message: str, *args) -> None:
    """Count a fall-back to the whole-clip path and say so: it still works, but holds the whole clip."""
    FALLBACKS[kind] += 1
    log.warning(message, *args)


def fallback_counts() -> dict[str, int]:
    """Fall-backs to the whole-clip path so far, by kind (an empty dict when every encode/decode streamed)."""
    return dict(FALLBACKS)


def encode(vae, frames: int, height: int, width: int, source: FrameSource) -> torch.Tensor:
    """Frames from ``source`` → latent [1, 16, T_lat, h/8, w/8], a few pixel frames at a time.

    ``frames`` must be 4n+1 (Casper's padded clips are).
    """
    whole = lambda: vae.encode(source(torch.arange(frames)))  # noqa: E731  the host's own path
    if not streams(vae):
        return whole()
    device, shape = vae.device, (1, 3, frames, height, width)

    def prepare(chunk: torch.Tensor) -> torch.Tensor:  # [t, H, W, 3] in [0, 1] → [1, 3, t, H, W] in [-1, 1]
        return vae.process_input(chunk.movedim(-1, 0).unsqueeze(0)).to(vae.vae_dtype).to(device)

    try:
        with _device_context(device):
            comfy.model_management.load_models_gpu([vae.patcher],
                                                   memory_required=vae.memory_used_encode(shape, vae.vae_dtype),
                                                   force_full_load=getattr(vae, "disable_offload", False))
            latent = vae.first_stage_model.encode(LazyClip(frames, height, width, source, prepare))
    except UnsupportedLoop as err:
        _fall_back("encode_unsupported_loop", "This ComfyUI's Wan VAE encoder does not take frames a few at a "
                   "time (%s): encoding the whole clip at once, which needs more memory on long clips.", err)
        return whole()
    except torch.OutOfMemoryError:
        _fall_back("encode_out_of_memory",
                   "Out of memory encoding a few frames at a time: retrying with ComfyUI's own (tiled) encode.")
        comfy.model_management.soft_empty_cache()
        return whole()
    return latent.to(vae.output_device).to(_output_dtype(vae))


class _SinkDecoder(nn.Module):
    """The Wan decoder, each output chunk sent to a sink; the loop gets an empty chunk back."""

    def __init__(self, decoder: nn.Module, sink: Callable[[torch.Tensor], None]):
        super().__init__()
        self.decoder = decoder
        self._sink = sink

    def forward(self, *args, **kwargs):
        out = self.decoder(*args, **kwargs)
        chunks = out if isinstance(out, list) else [out]
        for chunk in chunks:
            self._sink(chunk)
        b, c, _, h, w = chunks[0].shape
        empty = chunks[0].new_empty((b, c, 0, h, w))  # not a view: it must not keep the chunk alive
        return [empty] if isinstance(out, list) else empty


def decode(vae, samples: torch.Tensor, sink: FrameSink) -> None:
    """latent [1, C, T_lat, h, w] → ``sink(first_frame, frames [t, H, W, 3])`` chunk by chunk, in order."""
    decode_batch(vae, samples, lambda row, first, frames: sink(first, frames))


def decode_batch(vae, samples: torch.Tensor, sink: RowSink) -> None:
    """latent [B, C, T_lat, h, w] → ``sink(row, first_frame, frames [t, H, W, 3])`` per row, chunk by chunk, in
    order: the B rows go through the decoder together (one VAE call), so its weights are read once per chunk."""
    rows = samples.shape[0]

    def whole() -> None:  # the host's own (tiled on OOM) decode; each row's sink starts over at frame 0
        frames = vae.decode(samples)  # [B, T, H, W, 3]
        for row, row_frames in enumerate(frames.reshape(rows, -1, *frames.shape[-3:])):
            sink(row, 0, row_frames)

    if not streams(vae):
        return whole()
    done = 0

    def drain(chunk: torch.Tensor) -> None:  # [B, 3, t, H, W] in [-1, 1]
        nonlocal done
        pixels = vae.process_output(chunk.to(device=vae.output_device, dtype=_output_dtype(vae), copy=True))
        for row in range(rows):
            sink(row, done, pixels[row].movedim(0, -1))  # [t, H, W, 3]
        done += pixels.shape[2]

    view = copy.copy(vae.first_stage_model)  # shares every weight; its own module table, so the VAE others
    view._modules = dict(view._modules)     # hold is never changed
    view._modules["decoder"] = _SinkDecoder(vae.first_stage_model.decoder, drain)
    device = vae.device
    try:
        with _device_context(device):
            comfy.model_management.load_models_gpu([vae.patcher], memory_required=decode_memory(vae, samples.shape),
                                                   force_full_load=getattr(vae, "disable_offload", False))
            view.decode(samples.to(device=device, dtype=vae.vae_dtype))
    except torch.OutOfMemoryError:
        _fall_back("decode_out_of_memory",
                   "Out of memory decoding a few frames at a time: retrying with ComfyUI's own (tiled) decode.")
        comfy.model_management.soft_empty_cache()
        whole()


def decode_memory(vae, shape) -> int:
    """ComfyUI's own estimate for decoding latents ``shape`` [B, C, T, h, w] at once: its per-row figure × B
    (``VAE.decode`` divides free memory by the per-row figure to batch rows the same way)."""
    return int(vae.memory_used_decode(shape, vae.vae_dtype)) * int(shape[0])


def batch_fits(vae, shape) -> bool:
    """Whether ``shape[0]`` rows fit one decode call by ComfyUI's estimate: the rows' working memory plus the
    VAE's weights not yet loaded, against the device's free memory."""
    patcher = vae.patcher
    unloaded = patcher.model_size() - patcher.loaded_size()
    free = comfy.model_management.get_free_memory(vae.device)
    fits = decode_memory(vae, shape) + unloaded <= free
    log.debug("decode of %d rows: %.2f GB needed, %.2f GB free: %s", shape[0],
              (decode_memory(vae, shape) + unloaded) / 2**30, free / 2**30, "one call" if fits else "row by row")
    return fits


def _device_context(device):
    """ComfyUI's per-device CUDA context where the host has one (v0.33), else nothing."""
    context = getattr(comfy.model_management, "cuda_device_context", None)
    return context(device) if context else contextlib.nullcontext()


def decode_to_source(vae, samples: torch.Tensor, frames: int | None,
                     to_layer: Callable[[torch.Tensor], torch.Tensor], out: torch.Tensor | None = None) -> torch.Tensor:
    """latent [1, C, T_lat, h, w] → the layer at the source's frame count, filled chunk by chunk.

    ``to_layer`` maps decoded working-size frames [t, h, w, 3] to the layer's frames (source size);
    frames past ``frames`` (the time padding) are dropped before it. ``frames`` None keeps them all.
    ``out`` [frames, …] receives the layer when given (else it is allocated).
    """
    return decode_rows_to_source(vae, samples, frames, [to_layer], [out])[0]


def decode_rows_to_source(vae, samples: torch.Tensor, frames: int | None,
                          to_layers: Sequence[Callable[[torch.Tensor], torch.Tensor]],
                          outs: Sequence[torch.Tensor | None]) -> list[torch.Tensor]:
    """latent [B, C, T_lat, h, w] → B layers as ``decode_to_source`` makes each (row i through ``to_layers[i]``
    into ``outs[i]``), all rows decoded in one VAE call (``decode_batch``)."""
    outs = list(outs)
    parts: list[list[torch.Tensor]] = [[] for _ in to_layers]

    def sink(row: int, first: int, decoded: torch.Tensor) -> None:
        if first == 0:
            parts[row].clear()  # a retry starts over
        if frames is not None:
            decoded = decoded[: max(0, frames - first)]
        if not len(decoded):
            return
        layer = to_layers[row](decoded)
        if frames is None:
            parts[row].append(layer)
            return
        if outs[row] is None:
            outs[row] = torch.empty((frames, *layer.shape[1:]), dtype=layer.dtype, device=layer.device)
        outs[row][first:first + len(layer)] = layer

    decode_batch(vae, samples, sink)
    return [torch.cat(p) for p in parts] if frames is None else outs
