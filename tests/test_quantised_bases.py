"""The dual-branch forward on bases users actually load: fp8 weights (UNETLoader's weight_dtype) and a
LoRA-patched base (14B Casper = Fun-InP + LoRA through LoraLoaderModelOnly), each against the same
weights loaded plainly in fp32."""

from __future__ import annotations

import torch
from safetensors.torch import save_file

from test_branch_forward import _expert, _inputs, _pack_forward

SAME_WEIGHTS_TOL = 1e-4  # relative to the output's largest magnitude: identical weights (fp8 measured: 0.0)
FP8_VS_FP32_TOL = 0.10  # quantising every weight to e4m3 (3 mantissa bits); measured 0.071 (B) and 0.066 (C)


def _relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return ((actual.float() - expected.float()).abs().max() / expected.float().abs().max()).item()


def _fp32_model(state: dict):
    import comfy.sd

    return comfy.sd.load_diffusion_model_state_dict({k: v.float() for k, v in state.items()},
                                                    model_options={"dtype": torch.float32})


def _dual(core, model, seed: int):
    effect = _expert(core, model, "effect", "B", [2, 3], seed=seed)
    quality = _expert(core, model, "quality", "C", None, seed=seed + 1)
    x, t, context, clip_fea = _inputs(model, seed=seed + 2, clip=True)
    effect_out = _pack_forward(core.patching.apply_branch_experts(model, effect, None), x, t, context, clip_fea)
    quality_out = _pack_forward(core.patching.apply_branch_experts(model, None, quality), x, t, context, clip_fea)
    return effect_out, quality_out


def test_fp8_base_matches_the_same_weights_in_fp32(core, tiny_files):
    import comfy.sd

    fp8 = comfy.sd.load_diffusion_model(str(tiny_files["i2v"]), model_options={"dtype": torch.float8_e4m3fn})
    assert fp8.model.diffusion_model.blocks[0].self_attn.q.weight.dtype == torch.float8_e4m3fn
    same_values = _fp32_model(fp8.model.diffusion_model.state_dict())  # the fp8 values, upcast
    plain = comfy.sd.load_diffusion_model(str(tiny_files["i2v"]), model_options={"dtype": torch.float32})
    for got, same, orig, what in zip(_dual(core, fp8, 20), _dual(core, same_values, 20), _dual(core, plain, 20),
                                     ("Effect/mask B", "Quality/mask C")):
        assert torch.isfinite(got).all()
        assert _relative_error(got, same) < SAME_WEIGHTS_TOL, what
        assert _relative_error(got, orig) < FP8_VS_FP32_TOL, what


def _lora_file(state: dict, path, rank: int = 4, seed: int = 30) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """A ComfyUI-loadable LoRA (``diffusion_model.<layer>.lora_A/B.weight``) on every block's q and ffn.0."""
    gen = torch.Generator().manual_seed(seed)
    factors = {}
    for key, weight in state.items():
        if key.endswith(("self_attn.q.weight", "ffn.0.weight")):
            out_f, in_f = weight.shape
            factors[key] = (torch.randn(rank, in_f, generator=gen) / in_f ** 0.5,
                            torch.randn(out_f, rank, generator=gen) * 0.3)
    lora = {}
    for key, (down, up) in factors.items():
        stem = "diffusion_model." + key.removesuffix(".weight")
        lora[f"{stem}.lora_A.weight"], lora[f"{stem}.lora_B.weight"] = down, up
    save_file(lora, str(path))
    return factors


def test_lora_patched_base_matches_the_merged_weights(core, tiny_files, comfy_dirs):
    import comfy.sd
    import folder_paths
    import nodes

    loras = comfy_dirs / "models" / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    folder_paths.add_model_folder_path("loras", str(loras), is_default=True)
    base = comfy.sd.load_diffusion_model(str(tiny_files["i2v"]), model_options={"dtype": torch.float32})
    state = {k: v.clone() for k, v in base.model.diffusion_model.state_dict().items()}
    strength = 0.8
    factors = _lora_file(state, loras / "tiny_casper_lora.safetensors")
    (patched_base,) = nodes.LoraLoaderModelOnly().load_lora_model_only(base, "tiny_casper_lora.safetensors",
                                                                       strength)
    assert len(patched_base.patches) == len(factors)  # every LoRA key found its layer
    merged = dict(state)
    for key, (down, up) in factors.items():
        merged[key] = state[key] + strength * (up @ down)
    merged_model = _fp32_model(merged)
    for got, expected, what in zip(_dual(core, patched_base, 40), _dual(core, merged_model, 40),
                                   ("Effect/mask B", "Quality/mask C")):
        assert _relative_error(got, expected) < SAME_WEIGHTS_TOL, what
    plain = _dual(core, base, 40)
    assert _relative_error(plain[0], _dual(core, merged_model, 40)[0]) > 1e-2, "the LoRA changed nothing"
