"""The pack's pairwise dual-branch forward against the paper's dense formulation (DESIGN §1–2)."""

from __future__ import annotations

import contextlib

import pytest
import torch

from training import random_models as tm
from benchmarks.references.dense_forward import dense_forward

TOL = 1e-5  # relative to the reference's largest magnitude (fp32, CPU)


def _inputs(model, seed: int, clip: bool):
    """A [bg, α] pair (different noisy latents, shared 20 concat channels) + text (+ CLIP)."""
    gen = torch.Generator().manual_seed(seed)
    noisy = torch.randn(2, 16, 3, 8, 8, generator=gen)
    concat = torch.randn(1, 20, 3, 8, 8, generator=gen).expand(2, -1, -1, -1, -1)
    x = torch.cat((noisy, concat), dim=1)  # [2, 36, T, H, W]
    t = torch.full((2,), 700.0)
    context = tm.text_conditioning(seed + 1)[0][0].expand(2, -1, -1)
    clip_fea = tm.clip_vision_output(seed + 2).penultimate_hidden_states.expand(2, -1, -1) if clip else None
    return x, t, context, clip_fea


def _expert(core, model, role: str, mask: str, blocks, seed: int, init_std: float = 0.5):
    from_core = core.experts
    base = core.patching.base_signature(model)
    return from_core.zero_lora_expert(role, base, rank=8, blocks=blocks, mask=mask, alpha=4.0, seed=seed,
                                      init_std=init_std).with_strength(1.3)


@contextlib.contextmanager
def _loaded(patched):
    import comfy.model_management as mm

    mm.load_models_gpu([patched] + patched.get_nested_additional_models())  # as the sampler loads it
    try:
        yield patched.model.diffusion_model
    finally:
        mm.unload_all_models()


@torch.no_grad()
def _pack_forward(patched, x, t, context, clip_fea):
    """The patched clone's diffusion model, called the way ComfyUI's sampler calls it."""
    with _loaded(patched) as wan:
        options = {"wrappers": patched.wrappers, "sigmas": t / 1000.0}
        return wan(x, t, context, clip_fea=clip_fea, transformer_options=options)


@torch.no_grad()
def _stock_forward(model, x, t, context, clip_fea):
    with _loaded(model) as wan:
        return wan(x, t, context, clip_fea=clip_fea, transformer_options={})


def _assert_close(actual, expected, what):
    scale = expected.abs().max().item()
    err = (actual - expected).abs().max().item()
    assert err <= TOL * scale, f"{what}: max abs diff {err:.3e} > {TOL:g} × {scale:.3e}"


CONFIGS = [  # (role, blocks): the paper's Effect (last K blocks) and Quality (all blocks)
    pytest.param("effect", [2, 3], id="effect-lastK"),
    pytest.param("quality", None, id="quality-all"),
]


@pytest.mark.parametrize("model_name", ["i2v", "t2v"])
@pytest.mark.parametrize("role,blocks", CONFIGS)
@pytest.mark.parametrize("mask", ["A", "B", "C"])
def test_pack_forward_matches_dense_reference(core, request, model_name, role, blocks, mask):
    model = request.getfixturevalue(f"tiny_{model_name}")
    expert = _expert(core, model, role, mask, blocks, seed=10)
    x, t, context, clip_fea = _inputs(model, seed=3, clip=model_name == "i2v")
    patched = core.patching.apply_branch_experts(model, expert if role == "effect" else None,
                                                 expert if role == "quality" else None, tau=0.5)
    out = _pack_forward(patched, x, t, context, clip_fea)
    with torch.no_grad():
        ref_bg, ref_alpha = dense_forward(model.model.diffusion_model, x[:1], x[1:], t[:1], context[:1],
                                          None if clip_fea is None else clip_fea[:1], expert, mask)
    _assert_close(out[0:1], ref_bg, "background half")
    _assert_close(out[1:2], ref_alpha, "alpha half")
    assert not torch.allclose(out[1:2], _stock_forward(model, x, t, context, clip_fea)[1:2], atol=1e-3), \
        "the LoRA had no effect: the comparison would not catch a missing alpha path"


@pytest.mark.parametrize("mask", ["B", "C"])
def test_background_half_is_the_stock_forward(core, tiny_i2v, mask):
    role = "effect" if mask == "B" else "quality"
    expert = _expert(core, tiny_i2v, role, mask, None, seed=4, init_std=2.0)
    x, t, context, clip_fea = _inputs(tiny_i2v, seed=5, clip=True)
    patched = core.patching.apply_branch_experts(tiny_i2v, expert if role == "effect" else None,
                                                 expert if role == "quality" else None)
    out = _pack_forward(patched, x, t, context, clip_fea)
    stock = _stock_forward(tiny_i2v, x, t, context, clip_fea)
    _assert_close(out[0:1], stock[0:1], f"background with mask {mask}")


def test_zero_lora_mask_c_alpha_half_is_the_stock_forward(core, tiny_i2v):
    expert = _expert(core, tiny_i2v, "quality", "C", None, seed=6, init_std=0.0)
    x, t, context, clip_fea = _inputs(tiny_i2v, seed=7, clip=True)
    patched = core.patching.apply_branch_experts(tiny_i2v, None, expert)
    out = _pack_forward(patched, x, t, context, clip_fea)
    stock = _stock_forward(tiny_i2v, x, t, context, clip_fea)
    _assert_close(out[1:2], stock[1:2], "alpha with zero LoRA and mask C")


def test_mask_a_changes_the_background(core, tiny_i2v):
    """The ablation mask really lets background queries see alpha tokens (DESIGN §1)."""
    expert = _expert(core, tiny_i2v, "effect", "A", None, seed=8)
    x, t, context, clip_fea = _inputs(tiny_i2v, seed=9, clip=True)
    out = _pack_forward(core.patching.apply_branch_experts(tiny_i2v, expert, None), x, t, context, clip_fea)
    stock = _stock_forward(tiny_i2v, x, t, context, clip_fea)
    assert (out[0] - stock[0]).abs().max() > 1e-3


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_forward_tracks_fp32(core, tiny_files, dtype):
    import comfy.sd

    model = comfy.sd.load_diffusion_model(str(tiny_files["i2v"]), model_options={"dtype": dtype})
    assert model.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == dtype
    expert = _expert(core, model, "effect", "B", [2, 3], seed=11)
    x, t, context, clip_fea = _inputs(model, seed=12, clip=True)
    patched = core.patching.apply_branch_experts(model, expert, None)
    out = _pack_forward(patched, x.to(dtype), t, context.to(dtype), clip_fea.to(dtype))
    ref_bg, ref_alpha = dense_forward(model.model.diffusion_model, x[:1].to(dtype), x[1:].to(dtype), t[:1],
                                      context[:1].to(dtype), clip_fea[:1].to(dtype), expert, "B")
    assert out.dtype == dtype and torch.isfinite(out).all()
    for got, ref in ((out[0:1], ref_bg), (out[1:2], ref_alpha)):
        err = (got.float() - ref.float()).abs().max() / ref.float().abs().max()
        assert err < 0.05, f"{dtype}: relative error {err:.3f}"


def test_benchmark_loads_the_lora_factors_with_the_model(core, tiny_i2v):
    """The GPU crash of benchmarks/branch_forward.py (LoRA factors left on the CPU), caught on a CPU:
    what the benchmark loads must include the experts' additional model."""
    import comfy.model_management as mm
    from benchmarks.branch_forward import load_for_forward

    effect = _expert(core, tiny_i2v, "effect", "B", [2, 3], seed=5)
    patched = core.patching.apply_branch_experts(tiny_i2v, effect, None)
    factors = patched.get_nested_additional_models()
    assert factors, "the LoRA factors travel as an additional model"
    mm.unload_all_models()
    try:
        load_for_forward(patched)
        loaded = [entry.model for entry in mm.current_loaded_models]
        for model in factors:
            assert any(m is model or m.is_clone(model) for m in loaded if m is not None), "LoRA factors not loaded"
    finally:
        mm.unload_all_models()
