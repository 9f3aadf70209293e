"""training.analyze_blocks and training.sweep_tau on a tiny Wan: JSON + PNG, and the maths under them."""

from __future__ import annotations

import json
import math

import pytest
import torch

from training import random_models as tm


@pytest.fixture(scope="module")
def tool_args(pack, tiny_files, tmp_path_factory) -> list[str]:
    from omnimatte_core.text_embeds import save_conditioning

    folder = tmp_path_factory.mktemp("analysis")
    text = save_conditioning(tm.text_conditioning(41), folder / "text.safetensors")
    return ["--model", str(tiny_files["i2v"]), "--vae", str(tiny_files["vae"]), "--text-embeds", str(text),
            "--clip-vision", "random:1", "--height", "32", "--width", "48", "--frames", "5", "--threads", "1"]


def test_token_weights_follow_wan_token_order():
    from training.analyze_blocks import token_weights

    mask = torch.zeros(9, 32, 48)
    mask[5:9, 16:32, 32:48] = 1.0  # pixel frames 5–8 = latent frame 2; token row 1, column 2
    weights = token_weights(mask)
    assert weights.shape == (3 * 2 * 3,)
    expected = torch.zeros(3, 2, 3)
    expected[2, 1, 2] = 1.0
    assert torch.equal(weights, expected.flatten())
    mask0 = torch.zeros(9, 32, 48)
    mask0[0, :16, :16] = 1.0  # frame 0 alone makes latent frame 0
    assert float(token_weights(mask0)[0]) == 1.0


def test_attention_probe_matches_dense_softmax_and_is_chunk_invariant():
    from training.analyze_blocks import AttentionProbe

    gen = torch.Generator().manual_seed(0)
    heads, d, length = 2, 8, 12
    q, k = torch.randn(1, length, heads * d, generator=gen), torch.randn(1, length, heads * d, generator=gen)
    objects = torch.zeros(length)
    objects[[1, 4, 5]] = 1.0
    effect = torch.rand(length, generator=gen)
    weights = torch.softmax(torch.einsum("bqhd,bkhd->bhqk", q.view(1, length, heads, d), k.view(1, length, heads, d))
                            / math.sqrt(d), dim=-1)  # [1, h, L, L]
    dense = float((weights[0][:, [1, 4, 5]].mean(dim=(0, 1)) * effect).sum())
    for chunk in (1, 2, 100):
        probe = AttentionProbe(1, objects, effect, chunk)
        assert math.isclose(probe._association(q, k, heads), dense, rel_tol=1e-5)


def test_suggested_k_from_troughs():
    from training.analyze_blocks import find_troughs, suggest_k

    scores = [0.3, 0.2, 0.25, 0.1, 0.15]
    assert find_troughs(scores) == [1, 3]
    assert suggest_k(scores)[0] == 2
    assert suggest_k([0.1, 0.2, 0.3, 0.4])[0] == 2  # no trough: a third of the blocks, rounded up


def test_analyze_blocks_writes_json_and_png(tool_args, tmp_path):
    from PIL import Image

    from training import analyze_blocks

    result = analyze_blocks.main([*tool_args, "--output", str(tmp_path), "--clips", "2", "--chunk", "5"])
    saved = json.loads((tmp_path / "block_scores.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["num_blocks"] == 4 and len(saved["scores"]) == 4 and saved["clips"] == 2
    assert math.isclose(sum(saved["scores"]), 1.0, rel_tol=1e-9) and all(s > 0 for s in saved["scores"])
    assert 1 <= saved["suggested_k"] <= 4 and saved["effect_blocks"][-1] == 3
    assert len(saved["effect_blocks"]) == saved["suggested_k"]
    assert Image.open(tmp_path / "block_scores.png").size == (640, 400)


def test_probe_leaves_the_model_output_unchanged(tool_args, tiny_i2v):
    import comfy.model_management

    from training import common
    from training.analyze_blocks import AttentionProbe, token_weights
    from training.analyze_blocks import parser as ab_parser

    args = ab_parser().parse_args([*tool_args, "--output", "unused"])
    inputs = common.load_inputs(args, "fp32")
    clip, enc = common.encoded_clip(inputs, inputs.held_out, 0)
    model = inputs.base
    comfy.model_management.load_models_gpu([model])
    x = torch.randn(enc.background.shape, generator=torch.Generator().manual_seed(1))
    c_concat = model.model.concat_cond(noise=x, concat_latent_image=enc.video_latent, concat_mask=enc.concat_mask,
                                       device=x.device)
    sigma = torch.tensor([0.5])

    def run(options):
        with torch.no_grad():
            return model.model.apply_model(x, sigma, c_concat=c_concat, c_crossattn=enc.context, clip_fea=enc.clip_fea,
                                           transformer_options=options)

    probe = AttentionProbe(4, token_weights(clip.object_mask), token_weights(clip.shadow_region), 4)
    assert torch.equal(run({"optimized_attention_override": probe}), run({}))
    assert (probe.scores > 0).all(), "every block's self-attention was seen"


def test_sweep_tau_writes_json_and_png(tool_args, tiny_i2v, core, tmp_path):
    from PIL import Image

    from training import sweep_tau

    base = core.patching.base_signature(tiny_i2v)
    effect = core.experts.zero_lora_expert("effect", base, rank=4, blocks=[2, 3], seed=1, init_std=0.5)
    quality = core.experts.zero_lora_expert("quality", base, rank=4, seed=2, init_std=0.5)
    files = [core.expert_file.save_expert(e, tmp_path / f"{e.info.role.value}.safetensors") for e in (effect, quality)]
    result = sweep_tau.main([*tool_args, "--effect", str(files[0]), "--quality", str(files[1]), "--output",
                             str(tmp_path / "sweep"), "--taus", "0", "0.5", "1", "--clips", "1", "--steps", "3"])
    saved = json.loads((tmp_path / "sweep" / "tau_sweep.json").read_text())
    assert [r["tau"] for r in saved["rows"]] == [0.0, 0.5, 1.0]
    for row in saved["rows"]:
        assert row["object_mse"] is not None and row["shadow_mse"] is not None
    assert saved["rows"][0]["object_mse"] != saved["rows"][2]["object_mse"], "τ=0 (effect only) vs τ=1 (quality only)"
    assert saved == json.loads(json.dumps(result))
    assert Image.open(tmp_path / "sweep" / "tau_sweep.png").size == (640, 400)


def test_caption_cache_round_trip(tmp_path):
    from training.cache_text import write_caption_cache
    from training.features import TextEmbeddings

    encoded = {}

    def encode(caption: str) -> list:  # stands in for umt5 (11 GB); same CONDITIONING shape
        encoded[caption] = tm.text_conditioning(len(caption))
        return encoded[caption]

    write_caption_cache(encode, ["a beach.", "a street.", "a beach."], tmp_path)
    text = TextEmbeddings(tmp_path)
    for caption in ("a beach.", "a street."):
        assert torch.equal(text.tokens(caption), encoded[caption][0][0])
    with pytest.raises(ValueError, match="cache_text"):
        text.tokens("a forest.")
    write_caption_cache(lambda c: pytest.fail("re-encoded a cached caption"), ["a beach."], tmp_path)
