"""The published Casper files' exact layouts through ComfyUI's stock loaders (issue 23).

Files come from ``harness.casper_layouts`` (written from Gen-Omnimatte's published architecture,
random values, fewer blocks; the 14B LoRA's base also narrower). The full 30 / 40 block name sets
are checked on meta tensors. Nothing here mocks ComfyUI: UNETLoader, LoraLoaderModelOnly, the LoRA
converter, the model patcher and the sampler are the host's own.
"""

from __future__ import annotations

import logging

import pytest
import torch

from harness import casper_layouts as cl
from training import random_models as tm
from test_omnimatte_chain import _clip, chain_graph, set_sources

SMALL_1_3B = cl.CASPER_1_3B.reduced(2)  # the real 1.3B widths (dim 1536, ffn 8960), 2 of 30 blocks
SMALL_14B = cl.FUN_14B.reduced(2, dim=256, ffn_dim=512)  # 14B key layout, narrow enough for CI


@pytest.fixture(scope="module")
def casper_files(comfy_dirs, pack):
    """The two published layouts in the session's model folders, plus the merged-LoRA reference model."""
    import folder_paths
    from safetensors.torch import save_file

    loras = comfy_dirs / "models" / "loras"
    loras.mkdir(exist_ok=True)
    folder_paths.add_model_folder_path("loras", str(loras), is_default=True)
    unets = comfy_dirs / "models" / "diffusion_models"
    base = cl.wan_state(SMALL_14B, seed=31)
    lora = cl.lora_state(SMALL_14B, rank=128, alpha=64.0, seed=32)
    save_file(base, str(unets / "casper_14b_base.safetensors"))
    save_file(lora, str(loras / "casper_14b_lora.safetensors"), metadata=cl.LORA_METADATA)
    save_file(cl.merged_reference(base, lora), str(unets / "casper_14b_merged.safetensors"))
    return {"1.3b": cl.write_wan(unets / "casper_1.3b.safetensors", SMALL_1_3B, seed=30),
            "14b_base": unets / "casper_14b_base.safetensors", "14b_merged": unets / "casper_14b_merged.safetensors",
            "lora": loras / "casper_14b_lora.safetensors", "base_state": base, "lora_state": lora}


def _unet(name: str):
    import nodes

    return nodes.UNETLoader().load_unet(name, "default")[0]


def _with_lora(model, name: str, strength: float = 1.0):
    import nodes

    return nodes.LoraLoaderModelOnly().load_lora_model_only(model, name, strength)[0]


def _experts_for(core, comfy_dirs, dim: int, num_layers: int) -> dict[str, str]:
    base = core.experts.BaseSignature(dim=dim, num_layers=num_layers, in_dim=36)
    names = {}
    for role, blocks in (("effect", [num_layers - 1]), ("quality", None)):
        names[role] = f"casper_dim{dim}_{role}.safetensors"
        expert = core.experts.zero_lora_expert(role, base, rank=4, blocks=blocks, seed=5, init_std=0.5)
        core.expert_file.save_expert(expert, comfy_dirs / "models" / "omnimatte" / names[role])
    return names


def _one_step(model, seed: int = 3):
    """One Euler step of ComfyUI's own sampler on a [background, alpha] latent with Casper-shaped conditioning."""
    import comfy.sample
    import node_helpers

    gen = torch.Generator().manual_seed(seed)
    values = {"concat_latent_image": torch.randn(1, 16, 2, 4, 6, generator=gen),
              "concat_mask": torch.ones(1, 4, 2, 32, 48), "clip_vision_output": tm.clip_vision_output(seed)}
    positive = node_helpers.conditioning_set_values(tm.text_conditioning(seed), values)
    latent = torch.zeros(2, 16, 2, 4, 6)
    return comfy.sample.sample(model, comfy.sample.prepare_noise(latent, seed), steps=1, cfg=1.0, sampler_name="euler",
                               scheduler="simple", positive=positive, negative=positive, latent_image=latent,
                               disable_pbar=True, seed=seed)


def test_casper_1_3b_layout_is_detected_as_wan21_i2v_and_every_key_is_used(casper_files):
    from safetensors.torch import load_file

    model = _unet(casper_files["1.3b"].name)
    assert type(model.model.model_config).__name__ == "WAN21_I2V"
    wan = model.model.diffusion_model
    assert (wan.in_dim, wan.dim, len(wan.blocks)) == (36, 1536, 2)
    loaded = wan.state_dict()
    published = load_file(str(casper_files["1.3b"]))
    assert set(loaded) == set(published), "a key of the file is not a parameter of the model, or the reverse"
    for key, value in published.items():
        assert value.dtype == torch.bfloat16
        assert torch.equal(loaded[key].float(), value.float()), key


def test_casper_1_3b_layout_runs_the_branch_sampler(runner, core, comfy_dirs, casper_files, tiny_files):
    experts = _experts_for(core, comfy_dirs, dim=1536, num_layers=2)
    set_sources(*_clip(frames=5))
    graph = chain_graph({"i2v": casper_files["1.3b"], "vae": tiny_files["vae"]}, experts, steps=1)
    result = runner.run(graph)
    assert result.success, result.error_message()
    for key in ("bg_latent", "alpha_latent"):
        assert torch.isfinite(result.captured[key]["samples"]).all()


@pytest.mark.parametrize("layout", [cl.CASPER_1_3B, cl.FUN_14B], ids=["casper_1.3b_30_blocks", "fun_14b_40_blocks"])
def test_every_published_block_name_maps(layout, caplog):
    """Full size on meta tensors: detection, every transformer key a parameter, every LoRA key a patch."""
    import comfy.lora
    import comfy.lora_convert
    import comfy.model_detection

    state = cl.wan_state(layout, shapes_only=True)
    config = comfy.model_detection.model_config_from_unet(state, "")
    assert type(config).__name__ == "WAN21_I2V"
    assert (config.unet_config["dim"], config.unet_config["num_layers"], config.unet_config["in_dim"]) == \
        (layout.dim, layout.num_layers, 36)
    model = config.get_model(state, "", device="meta")
    params = {k: tuple(v.shape) for k, v in model.diffusion_model.state_dict().items()}
    assert params == cl.wan_shapes(layout)
    lora = cl.lora_state(layout, shapes_only=True)
    with caplog.at_level(logging.WARNING):
        key_map = comfy.lora.model_lora_keys_unet(model, {})
        patches = comfy.lora.load_lora(comfy.lora_convert.convert_lora(lora), key_map)
    assert not [r for r in caplog.records if "lora key not loaded" in r.getMessage()]
    assert set(patches) == {f"diffusion_model.{m}.weight" for m in cl.linear_modules(layout)}
    assert len(patches) == (8 + 12 * layout.num_layers)


def test_14b_lora_through_lora_loader_equals_the_published_merge(casper_files, caplog):
    base = _unet(casper_files["14b_base"].name)
    with caplog.at_level(logging.WARNING):
        patched = _with_lora(base, casper_files["lora"].name, 1.0)
    assert not [r for r in caplog.records if "lora key not loaded" in r.getMessage()]
    assert set(patched.patches) == {f"diffusion_model.{m}.weight" for m in cl.linear_modules(SMALL_14B)}
    merged = _unet(casper_files["14b_merged"].name)
    patched.patch_model()
    try:
        weights = patched.model.diffusion_model.state_dict()
        for key, value in merged.model.diffusion_model.state_dict().items():
            assert torch.allclose(weights[key], value, atol=1e-5, rtol=1e-4), key
    finally:
        patched.unpatch_model()
    with_lora, reference = _one_step(patched), _one_step(merged)
    assert torch.allclose(with_lora, reference, atol=1e-4, rtol=1e-3)
    assert not torch.allclose(_one_step(base), reference, atol=1e-2), "the LoRA changed nothing"


def test_14b_lora_model_runs_the_dual_branch_forward(runner, core, comfy_dirs, casper_files, tiny_files):
    experts = _experts_for(core, comfy_dirs, dim=SMALL_14B.dim, num_layers=2)
    set_sources(*_clip(frames=5))
    graph = chain_graph({"i2v": casper_files["14b_base"], "vae": tiny_files["vae"]}, experts, steps=1)
    graph["lora"] = {"class_type": "LoraLoaderModelOnly", "inputs": {
        "model": ["unet", 0], "lora_name": casper_files["lora"].name, "strength_model": 1.0}}
    graph["shift"]["inputs"]["model"] = ["lora", 0]
    result = runner.run(graph)
    assert result.success, result.error_message()
    assert torch.isfinite(result.captured["alpha_latent"]["samples"]).all()
