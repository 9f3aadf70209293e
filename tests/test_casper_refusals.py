"""Casper files as users meet them (issue 23): prefixed and sharded copies loaded after
``python -m omnimatte_run.convert_casper`` or as they are, and wrong files refused naming the file and the fix.

ComfyUI's UNETLoader is the judge of what loads; ``omnimatte_core.model_files`` reads headers only.
"""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from harness import casper_layouts as cl
from omnimatte_run import convert_casper

TINY = cl.CASPER_1_3B.reduced(1, dim=128, ffn_dim=256)  # the published key layout, tiny widths
TINY_14B = cl.FUN_14B.reduced(1, dim=256, ffn_dim=512)  # a different width stands in for 14B vs 1.3B


@pytest.fixture(scope="module")
def mf(core):
    return core.model_files


def _loads_like_bare(path, bare: dict) -> None:
    import comfy.sd

    loaded = comfy.sd.load_diffusion_model(str(path)).model.diffusion_model.state_dict()
    assert set(loaded) == set(bare)
    assert all(torch.equal(loaded[k].float(), v.float()) for k, v in bare.items())


def test_comfy_loads_the_model_diffusion_model_prefix_as_it_is(mf, tmp_path):
    path = cl.write_wan(tmp_path / "ckpt_style.safetensors", TINY, seed=1, prefix="model.diffusion_model.")
    assert mf.check_diffusion_model(path).prefix == "model.diffusion_model."
    _loads_like_bare(path, cl.wan_state(TINY, seed=1))


@pytest.mark.parametrize("prefix", ["transformer.", "module.", "state_dict.", "module.transformer."])
def test_other_prefixes_are_refused_naming_the_command_that_loads_them(mf, tmp_path, prefix):
    import comfy.sd

    path = cl.write_wan(tmp_path / "prefixed.safetensors", TINY, seed=2, prefix=prefix)
    with pytest.raises(RuntimeError, match="Could not detect model type"):
        comfy.sd.load_diffusion_model(str(path))  # what a user meets in ComfyUI without the check
    with pytest.raises(mf.ModelFileError) as refused:
        mf.check_diffusion_model(path)
    message = str(refused.value)
    assert str(path) in message and f"'{prefix}'" in message and "python -m omnimatte_run.convert_casper" in message
    out = tmp_path / "bare.safetensors"
    assert convert_casper.main([str(path), str(out)]) == 0
    assert mf.check_diffusion_model(out).prefix == ""
    _loads_like_bare(out, cl.wan_state(TINY, seed=2))


@pytest.mark.parametrize("given", ["folder", "index"])
def test_sharded_base_is_refused_per_shard_and_joined_by_the_command(mf, tmp_path, given):
    shards = cl.write_sharded(tmp_path / "Wan2.1-Fun-14B-InP", cl.wan_state(TINY_14B, seed=3), shards=3)
    with pytest.raises(mf.ModelFileError, match="join the shards") as refused:
        mf.check_diffusion_model(shards[0])
    assert str(shards[0]) in str(refused.value)
    folder = shards[0].parent
    source = folder if given == "folder" else folder / "diffusion_pytorch_model.safetensors.index.json"
    out = tmp_path / "joined.safetensors"
    assert convert_casper.main([str(source), str(out)]) == 0
    _loads_like_bare(out, cl.wan_state(TINY_14B, seed=3))


def test_pickled_checkpoint_is_refused_without_being_opened(mf, tmp_path):
    path = tmp_path / "casper.pt"
    path.write_bytes(b"not even read")
    with pytest.raises(mf.ModelFileError, match=r"casper\.pt: a pickled checkpoint.*\.safetensors"):
        mf.check_diffusion_model(path)
    assert convert_casper.main([str(path), str(tmp_path / "out.safetensors")]) == 2


def test_text_to_video_model_is_refused_as_casper(mf, tmp_path):
    path = cl.write_wan(tmp_path / "wan2.1_t2v_1.3B.safetensors", cl.T2V_1_3B.reduced(1, dim=128, ffn_dim=256))
    with pytest.raises(mf.ModelFileError) as refused:
        mf.check_diffusion_model(path)
    message = str(refused.value)
    assert str(path) in message and "text-to-video" in message and "in_dim 16" in message and "in_dim 36" in message


def test_lora_given_as_the_unet_is_refused_naming_lora_and_its_base(mf, tmp_path):
    path = cl.write_lora(tmp_path / "casper_lora.safetensors", cl.FUN_14B.reduced(1, dim=5120, ffn_dim=64), rank=4)
    with pytest.raises(mf.ModelFileError) as refused:
        mf.check_diffusion_model(path)
    message = str(refused.value)
    assert "a LoRA" in message and "--lora casper_lora.safetensors" in message and "Wan2.1-Fun-14B-InP" in message


def _base_info(mf, tmp_path, layout, name="base.safetensors"):
    path = cl.write_wan(tmp_path / name, layout, seed=4)
    return path, mf.check_diffusion_model(path)


def test_published_lora_passes_on_its_base_and_is_refused_on_another(mf, tmp_path):
    lora = cl.write_lora(tmp_path / "casper_lora.safetensors", TINY_14B, rank=16)
    base_path, base = _base_info(mf, tmp_path, TINY_14B)
    assert len(mf.check_lora(lora, base, base_path).modules) == 8 + 12
    small_path, small = _base_info(mf, tmp_path, TINY, "casper_1.3b.safetensors")
    with pytest.raises(mf.ModelFileError) as refused:
        mf.check_lora(lora, small, small_path)
    message = str(refused.value)
    assert str(lora) in message and "dim-256" in message and "casper_1.3b.safetensors is dim 128" in message


def _rewritten(path, out, change):
    state = load_file(str(path))
    save_file(dict(change(state)), str(out))
    return out


def test_renamed_or_reranked_lora_keys_are_refused(mf, tmp_path):
    lora = cl.write_lora(tmp_path / "casper_lora.safetensors", TINY_14B, rank=16)
    base_path, base = _base_info(mf, tmp_path, TINY_14B)
    renamed = _rewritten(lora, tmp_path / "renamed.safetensors",
                         lambda s: ((k.replace("self_attn_q", "attn1_to_q"), v) for k, v in s.items()))
    with pytest.raises(mf.ModelFileError, match="name no layer.*lora key not loaded") as refused:
        mf.check_lora(renamed, base, base_path)
    assert "renamed.safetensors" in str(refused.value)
    down = "lora_unet__blocks_0_ffn_0.lora_down.weight"
    reranked = _rewritten(lora, tmp_path / "reranked.safetensors",
                          lambda s: ((k, v[:8] if k == down else v) for k, v in s.items()))
    with pytest.raises(mf.ModelFileError, match="down and up ranks differ.*blocks_0_ffn_0: 8 vs 16"):
        mf.check_lora(reranked, base, base_path)


def test_lora_without_comfys_marker_key_is_converted_and_then_fully_applied(mf, tmp_path, pack, caplog):
    """A VideoX-Fun LoRA trained without cross-attention: ComfyUI would not recognise its names at all."""
    import logging

    import comfy.sd
    import comfy.utils

    full = cl.write_lora(tmp_path / "full.safetensors", TINY_14B, rank=16)
    lora = _rewritten(full, tmp_path / "no_cross.safetensors",
                      lambda s: ((k, v) for k, v in s.items() if "cross_attn" not in k))
    base_path, base = _base_info(mf, tmp_path, TINY_14B)
    with pytest.raises(mf.ModelFileError, match="python -m omnimatte_run.convert_casper"):
        mf.check_lora(lora, base, base_path)
    out = tmp_path / "no_cross_comfy.safetensors"
    assert convert_casper.main([str(lora), str(out)]) == 0
    model = comfy.sd.load_diffusion_model(str(base_path))
    with caplog.at_level(logging.WARNING):
        patched, _ = comfy.sd.load_lora_for_models(model, None, comfy.utils.load_torch_file(str(out)), 1.0, 0)
    assert not [r for r in caplog.records if "lora key not loaded" in r.getMessage()]
    assert len(patched.patches) == 8 + 6  # every Linear but the six cross-attention ones
