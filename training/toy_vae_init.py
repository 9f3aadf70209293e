"""A Wan 2.1 VAE (ComfyUI's ``WanVAE`` class) set up by hand as a linear codec, to train from there.

Trained from noise on 2 CPU cores the class stalls near 10–15 dB held-out (docs/toy_world.md);
trained from this start it begins at ≈30 dB on the toy clips. The codec:

- encoder: 8×8 average pooling per frame (the three stride-2 convs), the four frames of each
  latent step packed into channels by the two temporal stride-2 convs: latent channels
  ``3·i + rgb`` hold frame ``i`` of the step (frame 0 of the clip: channels 0–2 alone);
- decoder: the time convolutions unpack the frames again, each nearest-neighbour upsampling
  is followed by a [1, 2, 1]² blur (= bilinear 2× upsampling), so the output is the pooled
  clip brought back bilinearly;
- every residual branch ends in a zero conv and every attention block in a zero projection,
  so they start as identities and training adds detail through them;
- the two ``RMS_norm → SiLU → conv`` heads stay linear: a large constant channel dominates the
  norm, and each signal travels as ``+s`` and ``−s`` with ``SiLU(s) − SiLU(−s) = s``;
- ``conv1`` / ``conv2`` (1×1) map the codec's channels to the Wan 2.1 latent statistics, so
  ``Wan21.process_in`` gives roughly zero-mean, unit-std channels (``channel_stats``).
"""

from __future__ import annotations

import math

import torch

SIGNAL = 12  # latent channels in use: 4 frames × RGB (the other 4 start unused)
CONST = 50.0  # the constant channel that keeps the heads' RMS norm linear
DECODER_CONST_CHANNEL = 12  # after the 12 signal channels; < 2·dim for every dim ≥ 8
BLUR = torch.tensor([1.0, 2.0, 1.0]) / 4


def _fill_random_(module: torch.nn.Module, gen: torch.Generator) -> None:
    """ComfyUI's layers skip init: fan-in normal weights, zero biases, unit norm gains."""
    for name, p in module.named_parameters():
        with torch.no_grad():
            if name.endswith("gamma"):
                p.fill_(1.0)
            elif p.ndim == 1:
                p.zero_()
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(math.prod(p.shape[1:])))


def _zero_(*params: torch.Tensor) -> None:
    for p in params:
        p.zero_()


def _identity_branches_(model: torch.nn.Module) -> None:
    """Residual branches end in zero, attention projects zero, shortcuts pass channels through."""
    from comfy.ldm.wan import vae as wan_vae

    for m in model.modules():
        if isinstance(m, wan_vae.ResidualBlock):
            _zero_(m.residual[-1].weight, m.residual[-1].bias)
            if isinstance(m.shortcut, wan_vae.CausalConv3d):
                _zero_(m.shortcut.weight, m.shortcut.bias)
                for c in range(m.in_dim):
                    m.shortcut.weight[c, c, 0, 0, 0] = 1.0
        elif isinstance(m, wan_vae.AttentionBlock):
            _zero_(m.proj.weight, m.proj.bias)


def _current_tap_(conv, pairs: list[tuple[int, int, float]]) -> None:
    """A causal 3×3×3 conv as a 1×1 map on the current frame: ``out ← sign·in`` for (out, in, sign)."""
    _zero_(conv.weight, conv.bias)
    t, kh, kw = conv.weight.shape[2:]
    for out, inp, sign in pairs:
        conv.weight[out, inp, t - 1, kh // 2, kw // 2] = sign


def _pool_(conv, pairs: list[tuple[int, int, float]]) -> None:
    """Stride-2 3×3 conv after a right/bottom zero pad → 2×2 average pooling of the listed channels."""
    _zero_(conv.weight, conv.bias)
    for out, inp, sign in pairs:
        conv.weight[out, inp, :2, :2] = 0.25 * sign


def _blur_(conv, pairs: list[tuple[int, int, float]]) -> None:
    """3×3 conv after nearest 2× upsampling → bilinear 2× upsampling of the listed channels."""
    _zero_(conv.weight, conv.bias)
    kernel = torch.outer(BLUR, BLUR)
    for out, inp, sign in pairs:
        conv.weight[out, inp] = sign * kernel


def _time_taps_(conv, pairs: list[tuple[int, int, int]]) -> None:
    """A (3, 1, 1) time conv: ``out ← in`` read at temporal tap ``tap`` for (out, in, tap)."""
    _zero_(conv.weight, conv.bias)
    for out, inp, tap in pairs:
        conv.weight[out, inp, tap, 0, 0] = 1.0


def _signed(channels: range, offset: int) -> list[tuple[int, int, float]]:
    """Channel c → +c and (offset + c) → −c: the ±s pair the linear heads need."""
    return [(c, c, 1.0) for c in channels] + [(offset + c, c, -1.0) for c in channels]


def _set_encoder_(enc, dim: int) -> None:
    from comfy.ldm.wan import vae as wan_vae

    _current_tap_(enc.conv1, [(c, c, 1.0) for c in range(3)])
    resamples = [m for m in enc.downsamples if isinstance(m, wan_vae.Resample)]
    space0, time1, time2 = resamples  # modes: downsample2d, downsample3d, downsample3d
    _pool_(space0.resample[1], [(c, c, 1.0) for c in range(dim)])
    _pool_(time1.resample[1], [(c, c, 1.0) for c in range(3)])
    # level 1: [previous, a, b] → channels 0–2 = a, 3–5 = b (two frames in one)
    _time_taps_(time1.time_conv, [(c, c, 1) for c in range(3)] + [(3 + c, c, 2) for c in range(3)])
    # level 2: ±pooled (6 channels each sign, at 0 and SIGNAL) + the constant channel
    const = 2 * SIGNAL
    _pool_(time2.resample[1], _signed(range(6), SIGNAL))
    time2.resample[1].bias[const] = CONST
    pairs = []
    for sign_base in (0, SIGNAL):
        pairs += [(sign_base + c, sign_base + c, 1) for c in range(6)]  # a: frames 1, 2 of the step
        pairs += [(sign_base + 6 + c, sign_base + c, 2) for c in range(6)]  # b: frames 3, 4
    _time_taps_(time2.time_conv, pairs + [(const, const, 2)])
    _linear_head_(enc.head, SIGNAL, const, 4 * dim)


def _linear_head_(head, signal: int, const: int, width: int) -> None:
    """RMS_norm → SiLU → conv computing SiLU(+s) − SiLU(−s) = s for ``signal`` channels."""
    norm, _, conv = head
    norm.gamma.fill_(1.0)
    norm.gamma[:2 * signal] = CONST / math.sqrt(width)
    _current_tap_(conv, [(c, c, 1.0) for c in range(signal)] + [(c, signal + c, -1.0) for c in range(signal)])


def _set_decoder_(dec, dim: int) -> None:
    """Unpack the frames, upsample bilinearly; a constant channel rides along through every blur.

    At the image border the zero-padded blurs lose weight; the constant channel loses the same
    weight, and the head's RMS norm divides by it: a normalised convolution, so borders keep
    their brightness (≈ 2 dB over plain zero padding on the toy clips).
    """
    from comfy.ldm.wan import vae as wan_vae

    const = DECODER_CONST_CHANNEL
    _current_tap_(dec.conv1, [(c, c, 1.0) for c in range(SIGNAL)])
    dec.conv1.bias[const] = CONST
    resamples = [m for m in dec.upsamples if isinstance(m, wan_vae.Resample)]
    time0, time1, space2 = resamples  # modes: upsample3d, upsample3d, upsample2d
    width0 = 4 * dim  # channels entering each time conv; its outputs are [frame a | frame b]
    carry = [(const, const, 2), (width0 + const, const, 2)]
    _time_taps_(time0.time_conv, [(c, c, 2) for c in range(6)] + [(width0 + c, 6 + c, 2) for c in range(6)] + carry)
    _blur_(time0.resample[1], [(c, c, 1.0) for c in range(6)] + [(const, const, 1.0)])
    _time_taps_(time1.time_conv, [(c, c, 2) for c in range(3)] + [(width0 + c, 3 + c, 2) for c in range(3)] + carry)
    _blur_(time1.resample[1], [(c, c, 1.0) for c in range(3)] + [(const, const, 1.0)])
    _blur_(space2.resample[1], _signed(range(3), 3) + [(6, const, 1.0)])
    _linear_head_(dec.head, 3, 6, dim)


def linear_codec_vae(dim: int = 8, seed: int = 0):
    """A ``comfy.ldm.wan.vae.WanVAE`` of width ``dim`` (≥ 8) that starts as the pooling/bilinear codec."""
    from comfy.ldm.wan import vae as wan_vae

    if dim < 8:
        raise ValueError(f"the linear codec needs a VAE width of at least 8 (7 decoder head channels), got {dim}")
    model = wan_vae.WanVAE(dim=dim, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                           temperal_downsample=[False, True, True])
    _fill_random_(model, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        _identity_branches_(model)
        _set_encoder_(model.encoder, dim)
        _set_decoder_(model.decoder, dim)
        set_latent_affine_(model, torch.zeros(16), torch.ones(16))
    return model


def wan21_latent_stats() -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [16], std [16]) that ``Wan21.process_in`` removes."""
    from comfy import latent_formats

    fmt = latent_formats.Wan21()
    return fmt.latents_mean.flatten().float(), fmt.latents_std.flatten().float()


def set_latent_affine_(model, codec_mean: torch.Tensor, codec_std: torch.Tensor) -> None:
    """conv1/conv2 (1×1) map codec channel c (mean, std) to Wan's mean_c + std_c·unit and back."""
    wan_mean, wan_std = wan21_latent_stats()
    scale = wan_std / codec_std.clamp(min=1e-3)  # [16]
    with torch.no_grad():
        _zero_(model.conv1.weight, model.conv1.bias, model.conv2.weight, model.conv2.bias)
        for c in range(16):
            model.conv1.weight[c, c, 0, 0, 0] = scale[c]
            model.conv1.bias[c] = wan_mean[c] - scale[c] * codec_mean[c]
            model.conv2.weight[c, c, 0, 0, 0] = 1.0 / scale[c]
            model.conv2.bias[c] = codec_mean[c] - wan_mean[c] / scale[c]
        for c in range(16, 32):  # the log-variance half is never used
            model.conv1.weight[c, c, 0, 0, 0] = 1.0
