"""The toy world's parts that need no trained weights: the VAE's codec start, latent normalisation,
kept objects in the data, one import name for the library, training on a T2V-type base."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from harness.toy_host import require_toy_world
from training import random_models as rm


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(1 / float((a - b).pow(2).mean()))


@pytest.fixture(scope="module")
def codec_file(pack, comfy_path, tmp_path_factory):
    from safetensors.torch import save_file

    from training.toy_vae_init import linear_codec_vae

    require_toy_world(comfy_path)
    path = tmp_path_factory.mktemp("codec") / "codec_vae.safetensors"
    save_file({k: v.contiguous() for k, v in linear_codec_vae(8).state_dict().items()}, str(path))
    return path


def test_codec_vae_loads_like_vaeloader_and_reconstructs_toy_clips(codec_file):
    """Loaded as VAELoader loads it, the hand-set codec already gives ≈ 28 dB on held-out toy clips."""
    from training.loaders import load_vae
    from training.toy_data import held_out_clips

    vae = load_vae(codec_file)
    clip = held_out_clips(1)[0]
    with torch.inference_mode():  # as the executor runs nodes
        latent = vae.encode(clip.video)
        decoded = vae.decode(latent).reshape(-1, 128, 128, 3).float()
    assert tuple(latent.shape) == (1, 16, 5, 16, 16)
    assert decoded.shape[0] == 17
    psnr = _psnr(decoded.clamp(0, 1), clip.video)
    assert psnr >= 27.5, psnr  # measured 28.3 dB on held-out clips 0–3 (8× pooling + bilinear, no training)
    worst_frame = min(_psnr(decoded[i].clamp(0, 1), clip.video[i]) for i in range(17))
    assert worst_frame >= psnr - 1.0  # every frame of every latent step is unpacked, not just the first


def test_latent_normalisation_keeps_reconstruction_and_gives_unit_channels(pack):
    from training.toy_data import held_out_clips
    from training.toy_vae import latent_stats, normalise_latents_, to_vae_space
    from training.toy_vae_init import linear_codec_vae, wan21_latent_stats

    model = linear_codec_vae(8)
    videos = torch.stack([c.video for c in held_out_clips(2)])
    with torch.no_grad():
        before = model.decode(model.encode(to_vae_space(videos)))
        stats = normalise_latents_(model, videos)
        after = model.decode(model.encode(to_vae_space(videos)))
    assert float((before - after).abs().max()) < 1e-3
    used = range(12)  # 4 frames × RGB; channels 12–15 start unused (constant)
    assert all(abs(stats["channel_mean"][c]) < 1e-3 and abs(stats["channel_std"][c] - 1) < 1e-3 for c in used)
    mean, std = latent_stats(model, videos)
    wan_mean, wan_std = wan21_latent_stats()
    assert torch.allclose(((mean - wan_mean) / wan_std)[:12], torch.zeros(12), atol=1e-3)


def test_kept_second_object_stays_in_the_clean_plate():
    from dataclasses import replace

    from training.toy_data import TOY_CONFIG
    from training.dataset import SyntheticClips
    from training.sources import ProceduralBackgrounds, ProceduralForegrounds

    clips = SyntheticClips(replace(TOY_CONFIG, keep_prob=1.0), ProceduralForegrounds(), ProceduralBackgrounds())
    clip = clips.clip(3)
    assert clip.keep_mask is not None and clip.keep_mask.any() and clip.meta["keep"]["shadow"] is not None
    assert (clip.trimask[clip.keep_mask & (clip.trimask < 1)] == 0).all()  # keep = 0 where the object does not win
    outside = clip.gt_alpha < 1e-4  # neither the removed object nor its shadow
    assert float((clip.video[outside] - clip.background[outside]).abs().max()) < 1e-3  # kept object in both
    plain = SyntheticClips(replace(TOY_CONFIG, keep_prob=0.0), ProceduralForegrounds(), ProceduralBackgrounds())
    assert plain.clip(3).keep_mask is None


def test_library_is_imported_under_one_name(pack):
    """The nodes, training and tests share one omnimatte_core: an expert from training is the nodes' kind."""
    import omnimatte_core.experts

    copies = [name for name in sys.modules if name.endswith(".omnimatte_core")]
    assert copies == []
    experts_node = sys.modules[pack.__name__ + ".nodes.experts"]
    assert experts_node.ExpertPair is omnimatte_core.experts.ExpertPair
    role = omnimatte_core.experts.ExpertRole("effect")
    assert experts_node.ExpertPair.__module__ == "omnimatte_core.experts" and role is omnimatte_core.experts.ExpertRole.EFFECT


@pytest.fixture(scope="module")
def t2v_run_files(pack, tiny_files, tmp_path_factory) -> dict:
    from omnimatte_core.text_embeds import save_conditioning

    folder = tmp_path_factory.mktemp("t2v")
    text = save_conditioning(rm.text_conditioning(31), folder / "text.safetensors")
    return {"model": tiny_files["t2v"], "vae": tiny_files["vae"], "text": text, "dir": folder}


def _t2v_argv(files: dict, out, *extra: str) -> list[str]:
    return ["--role", "quality", "--model", str(files["model"]), "--vae", str(files["vae"]), "--text-embeds",
            str(files["text"]), "--output", str(out), "--height", "32", "--width", "48", "--frames", "5",
            "--rank", "4", "--threads", "1", "--no-progress", "--val-every", "0", *extra]


def test_expert_trains_on_a_t2v_base_without_clip_vision(t2v_run_files):
    from training import train

    out = t2v_run_files["dir"] / "run"
    path = train.main(_t2v_argv(t2v_run_files, out, "--iterations", "2", "--pool", "1", "--keep-prob", "1"))
    assert path is not None and path.is_file()


def test_clip_vision_given_for_a_t2v_base_is_refused(t2v_run_files):
    from training import train

    with pytest.raises(SystemExit, match="no img_emb.*drop --clip-vision"):
        train.main(_t2v_argv(t2v_run_files, t2v_run_files["dir"] / "x", "--clip-vision", "random:0",
                             "--iterations", "1"))


def test_vae_trainer_resumes_and_exports_a_loadable_vae(codec_file, tmp_path, both_cores):
    """training.toy_vae: stop after one step, resume, export a VAELoader-loadable file with unit latents, stored
    in fp16 when asked (the shipped world's size budget) and measured as stored."""
    import json

    from safetensors.torch import load_file

    from training import toy_vae
    from training.loaders import load_vae

    argv = ["--output", str(tmp_path / "vae"), "--iterations", "2", "--batch", "1", "--crop", "32",
            "--crop-frames", "5", "--val-clips", "1", "--val-every", "1", "--threads", str(both_cores), "--dim", "8",
            "--pool", "2"]
    assert toy_vae.VaeTrainer(toy_vae.parser().parse_args(argv + ["--stop-after", "1"])).run() is None
    path = toy_vae.VaeTrainer(toy_vae.parser().parse_args(argv + ["--resume", "--export-dtype", "fp16"])).run()
    assert {t.dtype for t in load_file(str(path)).values()} == {torch.float16}
    steps = [json.loads(line)["step"] for line in (tmp_path / "vae" / "loss.jsonl").read_text().splitlines()]
    assert steps == [1, 2]
    metrics = json.loads((tmp_path / "vae" / "metrics.json").read_text())
    assert metrics["psnr"] > 25 and metrics["latent_after_process_in"]["channel_std"][:12] == [1.0] * 12
    assert load_vae(path).latent_channels == 16
    ceiling = metrics["ceiling"]  # the round trip of held-out ground truth: a codec blurs mattes, never ruins them
    assert 0 < ceiling["alpha_mae_object"] < 0.3 and ceiling["video_psnr"] > 25 and metrics["steps"] == 2


def test_soft_matte_weight_touches_only_the_soft_pixels_of_matte_crops():
    """training.toy_vae's soft term: shadows and edges (0.02 < alpha < 0.98) of matte crops, nothing else."""
    from training.toy_vae import soft_matte_pixels

    value = torch.tensor([0.0, 0.01, 0.3, 0.5, 0.97, 0.99, 1.0]).view(1, 1, 1, 1, 7).expand(2, 3, 1, 1, 7)
    soft = soft_matte_pixels(value * 2 - 1, torch.tensor([True, False]))  # crop 0 a matte, crop 1 a video
    assert soft[0, 0, 0, 0].tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert soft[1].sum() == 0


def test_vae_fine_tune_refuses_a_file_of_another_width(codec_file, tmp_path):
    from training import toy_vae

    argv = ["--output", str(tmp_path / "vae"), "--init", "random", "--dim", "16", "--init-from", str(codec_file),
            "--iterations", "1", "--pool", "2", "--threads", "1"]
    with pytest.raises(SystemExit, match="not a toy VAE of this width"):
        toy_vae.VaeTrainer(toy_vae.parser().parse_args(argv))


def test_remover_trainer_writes_a_t2v_model_unetloader_detects(pack, codec_file, tmp_path):
    import json

    from safetensors.torch import load_file

    from omnimatte_core.patching import has_image_embedding
    from omnimatte_core.text_embeds import save_conditioning
    from training import toy_remover

    text = save_conditioning(rm.text_conditioning(5), tmp_path / "text.safetensors")
    argv = ["--vae", str(codec_file), "--text-embeds", str(text), "--output", str(tmp_path / "remover"),
            "--layers", "2", "--ffn-dim", "256", "--iterations", "2", "--batch", "2", "--pool", "2",
            "--val-every", "2", "--val-clips", "1", "--val-steps", "2", "--threads", "1"]
    path = toy_remover.RemoverTrainer(toy_remover.parser().parse_args(argv)).run()
    losses = [json.loads(line)["loss"] for line in (tmp_path / "remover" / "loss.jsonl").read_text().splitlines()]
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    validation = json.loads((tmp_path / "remover" / "validation.jsonl").read_text().splitlines()[-1])
    assert validation["psnr_removed_region"] > 0 and validation["psnr_outside"] > 0
    model = rm.load_wan(path)  # as UNETLoader builds it
    assert model.model.diffusion_model.patch_embedding.weight.shape[1] == 36 and not has_image_embedding(model)

    # a wide base ships in fp16: the same weights, rounded, written from the last checkpoint without training
    fp32 = load_file(str(path))
    half_path = toy_remover.RemoverTrainer(toy_remover.parser().parse_args(
        argv + ["--export-only", "--export-dtype", "fp16"])).run()
    half = load_file(str(half_path))
    assert half.keys() == fp32.keys() and all(t.dtype == torch.float16 for t in half.values())
    assert all(torch.equal(half[k], fp32[k].half()) for k in fp32)
    assert len((tmp_path / "remover" / "loss.jsonl").read_text().splitlines()) == 2  # no step was taken
    assert rm.load_wan(half_path).model.diffusion_model.patch_embedding.weight.shape[1] == 36
