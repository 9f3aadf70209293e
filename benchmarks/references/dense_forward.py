"""Test-only reference of the paper's formulation, built from the stock Wan blocks.

Tokens of both inputs are concatenated to 2L, RoPE freqs are duplicated (the copy has the
same positions), a dense boolean [2L, 2L] mask applies to the joint self-attention, and the
LoRA delta is added to the copied half of q/k/v/o through forward hooks. Nothing here is
used by the pack; it exists to check the pack's pairwise forward against the definition.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F

from comfy.ldm.wan.model import sinusoidal_embedding_1d


def dense_mask(mask: str, length: int) -> torch.Tensor:
    """[2L, 2L] bool, True = may attend. Rows/cols 0..L-1 background, L..2L-1 alpha."""
    allowed = torch.zeros(2 * length, 2 * length, dtype=torch.bool)
    allowed[:length, :length] = True
    allowed[length:, length:] = True
    if mask in ("A", "B"):
        allowed[length:, :length] = True  # alpha queries see background keys
    if mask == "A":
        allowed[:length, length:] = True  # background queries see alpha keys
    return allowed


@contextlib.contextmanager
def _lora_hooks(wan, expert, length: int):
    handles = []
    if expert is not None:
        for (block, target), (down, up) in expert.lora.items():
            linear = getattr(wan.blocks[block].self_attn, target)

            def hook(module, inputs, output, down=down, up=up):
                x = inputs[0]
                delta = (x[:, length:] @ down.T.to(x)) @ up.T.to(x) * expert.scale
                return torch.cat((output[:, :length], output[:, length:] + delta), dim=1)

            handles.append(linear.register_forward_hook(hook))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@contextlib.contextmanager
def _self_attention_flag(wan, state: dict):
    handles = []
    for block in wan.blocks:
        handles.append(block.self_attn.register_forward_pre_hook(lambda m, a: state.update(inside=True)))
        handles.append(block.self_attn.register_forward_hook(lambda m, a, o: state.update(inside=False)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


@torch.no_grad()
def dense_forward(wan, x_bg, x_alpha, timestep, context, clip_fea=None, expert=None, mask: str = "C"):
    """Batch-1 inputs [1, C, T, H, W] → (background output, alpha output), each [1, 16, T, H, W]."""
    dtype = x_bg.dtype
    _, _, t, h, w = x_bg.shape
    freqs = wan.rope_encode(t, h, w, device=x_bg.device, dtype=dtype)  # [1, L, 1, d/2, 2, 2]
    freqs = torch.cat((freqs, freqs), dim=1)  # the copy gets the same positions
    embedded = [wan.patch_embedding(x.float()).to(dtype) for x in (x_bg, x_alpha)]
    grid = embedded[0].shape[2:]
    tokens = torch.cat([e.flatten(2).transpose(1, 2) for e in embedded], dim=1)  # [1, 2L, dim]
    length = tokens.shape[1] // 2

    e = wan.time_embedding(sinusoidal_embedding_1d(wan.freq_dim, timestep.flatten()).to(dtype))
    e = e.reshape(timestep.shape[0], -1, e.shape[-1])
    e0 = wan.time_projection(e).unflatten(2, (6, wan.dim))
    ctx = wan.text_embedding(context)
    context_img_len = None
    if clip_fea is not None:
        ctx = torch.cat((wan.img_emb(clip_fea), ctx), dim=1)
        context_img_len = clip_fea.shape[-2]

    allowed = dense_mask(mask, length).to(tokens.device)
    state = {"inside": False}

    def override(func, q, k, v, heads, *args, **kwargs):
        if not state["inside"]:
            return func(q, k, v, heads, *args, **kwargs)
        b, n, _ = q.shape
        qh, kh, vh = (z.view(b, n, heads, -1).transpose(1, 2) for z in (q, k, v))
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=allowed)
        return out.transpose(1, 2).reshape(b, n, -1)

    options = {"optimized_attention_override": override}
    with _lora_hooks(wan, expert, length), _self_attention_flag(wan, state):
        for block in wan.blocks:
            tokens = block(tokens, e=e0, freqs=freqs, context=ctx, context_img_len=context_img_len,
                           transformer_options=options)
    out = wan.head(tokens, e)
    return wan.unpatchify(out[:, :length], grid), wan.unpatchify(out[:, length:], grid)
