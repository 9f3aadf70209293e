"""training.train on a tiny Wan: loss goes down, the base stays frozen, the expert file samples,
gradient checkpointing is exact, resume continues, and a 2-process gloo run matches one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from training import random_models as tm

PACK_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run_files(pack, tiny_files, tmp_path_factory) -> dict:
    """Tiny model files + a cached text embedding (``pack`` first: ComfyUI's ``nodes`` must be imported)."""
    from omnimatte_core.text_embeds import save_conditioning

    folder = tmp_path_factory.mktemp("train")
    text = save_conditioning(tm.text_conditioning(31), folder / "text.safetensors")
    return {"model": tiny_files["i2v"], "vae": tiny_files["vae"], "text": text, "dir": folder}


def _argv(files: dict, out: Path, *extra: str) -> list[str]:
    return ["--role", "effect", "--model", str(files["model"]), "--vae", str(files["vae"]), "--text-embeds",
            str(files["text"]), "--clip-vision", "random:0", "--output", str(out), "--height", "32", "--width", "48",
            "--frames", "5", "--rank", "8", "--last-k", "2", "--threads", "1", "--no-progress", "--val-every", "0",
            *extra]


def _trainer(files: dict, out: Path, *extra: str):
    from training import train
    from training.distributed import DistInfo

    return train.Trainer(train.parser().parse_args(_argv(files, out, *extra)), DistInfo())


@pytest.fixture(scope="module")
def trained(run_files) -> dict:
    out = run_files["dir"] / "run"
    trainer = _trainer(run_files, out, "--iterations", "30", "--val-every", "15", "--val-clips", "1",
                       "--val-steps", "2", "--no-gradient-checkpointing")
    wan = trainer.inputs.base.model.diffusion_model
    base_before = {k: v.clone() for k, v in wan.state_dict().items()}
    before = trainer.held_out_loss(2)
    path = trainer.run()
    after = trainer.held_out_loss(2)
    frozen = all(torch.equal(v, base_before[k]) for k, v in wan.state_dict().items()) \
        and not any(p.requires_grad for p in wan.parameters())
    return {"path": path, "before": before, "after": after, "frozen": frozen, "out": out}


def test_training_lowers_held_out_loss_and_keeps_base_frozen(trained):
    assert trained["after"] < 0.9 * trained["before"], trained
    assert trained["frozen"], "the base Wan weights changed"
    lines = [json.loads(x) for x in (trained["out"] / "loss.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == list(range(1, 31))
    assert all(x["peak_rss_mb"] > 0 for x in lines), "loss.jsonl records the process's peak memory"
    validation = [json.loads(x) for x in (trained["out"] / "validation.jsonl").read_text().splitlines()]
    assert [v["step"] for v in validation] == [15, 30]
    for v in validation:
        assert v["object_mse"] is not None and v["flow_loss"] > 0 and "shadow_mse" in v
    assert validation[1]["flow_loss"] < validation[0]["flow_loss"] * 1.05


def test_expert_file_loads_and_samples_in_the_branch_sampler(core, tiny_i2v, trained, run_files):
    import comfy.sample

    from training import common, validate

    expert = core.expert_file.load_expert(trained["path"])
    info = expert.info
    assert (info.role.value, info.rank, info.blocks, info.attention_mask.value) == ("effect", 8, (2, 3), "B")
    assert info.training["iterations"] == 30 and info.base_model_name == Path(run_files["model"]).name
    assert any(float(up.abs().max()) > 0 for _, up in expert.lora.values()), "LoRA up factors never trained"

    trainer = _trainer(run_files, run_files["dir"] / "unused", "--iterations", "1")
    _, encoded = common.encoded_clip(trainer.inputs, trainer.inputs.held_out, 0)
    positive = validate.conditioning(encoded)
    latent = torch.zeros(2, *encoded.video_latent.shape[1:])
    noise = comfy.sample.prepare_noise(latent, 3)

    def sample(model):
        return comfy.sample.sample(model, noise, 3, 1.0, "euler", "simple", positive, positive, latent,
                                   disable_pbar=True, seed=3)

    base = core.patching.base_signature(tiny_i2v)
    zero = core.experts.zero_lora_expert("effect", base, rank=8, blocks=[2, 3])
    trained_out = sample(core.patching.apply_branch_experts(tiny_i2v, expert, None))
    zero_out = sample(core.patching.apply_branch_experts(tiny_i2v, zero, None))
    stock = sample(tiny_i2v)
    assert torch.isfinite(trained_out).all()
    assert torch.allclose(trained_out[0], stock[0], atol=1e-4, rtol=1e-4), "background row left the frozen path"
    assert not torch.allclose(trained_out[1], zero_out[1], atol=1e-4), "the trained expert changes nothing"


def test_trained_expert_runs_in_the_node_chain(runner, tiny_files, comfy_dirs, trained):
    """LoadOmnimatteExperts reads the file training wrote; BranchWanSampler samples with it."""
    import shutil

    from test_omnimatte_chain import SOURCE_FRAMES, SOURCE_H, SOURCE_W, _clip, chain_graph, set_sources

    target = comfy_dirs / "models" / "omnimatte" / "trained_effect_expert.safetensors"
    shutil.copy(trained["path"], target)
    video, mask = _clip(seed=3)
    set_sources(video, mask, seed=3)
    result = runner.run(chain_graph(tiny_files, {"effect": target.name, "quality": "none"}))
    assert result.success, result.error_message()
    alpha = result.captured["alpha"]
    assert alpha.shape == (SOURCE_FRAMES, SOURCE_H, SOURCE_W) and torch.isfinite(alpha).all()


def test_gradient_checkpointing_gives_the_same_gradients(run_files):
    import comfy.model_management as mm

    from training.branch_model import load_for_training
    from training.objective import alpha_flow_loss

    grads = []
    for flag in ("--no-gradient-checkpointing", "--gradient-checkpointing"):
        trainer = _trainer(run_files, run_files["dir"] / "ckpt", "--iterations", "1", flag)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for p in trainer.params:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)  # non-zero up: every factor gets gradient
        batch = trainer.batch([0, 1])
        load_for_training(trainer.trainable)
        blocks = trainer.trainable.patched.model.diffusion_model.blocks
        assert ("forward" in blocks[0].__dict__) == (flag == "--gradient-checkpointing")
        previous, mm.in_training = getattr(mm, "in_training", False), True
        try:
            alpha_flow_loss(trainer.trainable, batch).backward()
        finally:
            mm.in_training = previous
        grads.append([p.grad.clone() for p in trainer.params])
    for plain, checkpointed in zip(*grads):
        assert torch.allclose(plain, checkpointed, rtol=1e-4, atol=1e-7)
    assert all(float(g.abs().max()) > 0 for g in grads[0])


def test_resume_continues_where_it_stopped(run_files):
    from training import train

    straight, split = run_files["dir"] / "straight", run_files["dir"] / "split"
    a = train.main(_argv(run_files, straight, "--iterations", "4", "--checkpoint-every", "2"))
    assert train.main(_argv(run_files, split, "--iterations", "4", "--checkpoint-every", "2",
                            "--stop-after", "2")) is None
    assert sorted(p.name for p in (split / "checkpoints").glob("*.safetensors")) == ["step_000002.safetensors"]
    with (split / "loss.jsonl").open("a") as f:  # a run killed after logging step 3, before its checkpoint
        f.write(json.dumps({"step": 3, "loss": 99.0, "seconds": 1.0}) + "\n")
    b = train.main(_argv(run_files, split, "--iterations", "4", "--checkpoint-every", "2", "--resume"))
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)
    losses = lambda d: [json.loads(x) for x in (d / "loss.jsonl").read_text().splitlines()]  # noqa: E731
    assert [x["step"] for x in losses(split)] == [1, 2, 3, 4]
    assert [x["loss"] for x in losses(split)] == [x["loss"] for x in losses(straight)]
    with pytest.raises(ValueError, match="same --role, --rank and --last-k"):
        train.main(_argv(run_files, split, "--iterations", "6", "--rank", "4", "--resume"))


def test_anneal_steps_lower_the_rate_to_the_end_of_the_run(run_files):
    """--anneal-steps N: the rate is constant, then falls linearly over the last N steps; resumed with a
    larger --iterations, the fall moves to the new end (the checkpoints record each step's rate)."""
    from training import train
    from training.loop import anneal_factor

    assert [anneal_factor(s, 6, 3) for s in range(6)] == [1.0, 1.0, 1.0, 1.0, 2 / 3, 1 / 3]
    assert [anneal_factor(s, 4, 0) for s in range(4)] == [1.0] * 4
    out = run_files["dir"] / "anneal"
    rates = lambda: {int(p.stem[5:]): json.loads(p.read_text())["param_groups"][0]["lr"]  # noqa: E731
                     for p in (out / "checkpoints").glob("step_*.json")}
    train.main(_argv(run_files, out, "--iterations", "4", "--checkpoint-every", "1", "--keep-checkpoints", "9",
                     "--lr", "0.01", "--anneal-steps", "2"))
    assert rates() == pytest.approx({1: 0.01, 2: 0.01, 3: 0.01, 4: 0.005})
    assert json.loads((out / "settings.json").read_text())["anneal_steps"] == 2
    train.main(_argv(run_files, out, "--iterations", "6", "--checkpoint-every", "1", "--keep-checkpoints", "9",
                     "--lr", "0.01", "--anneal-steps", "2", "--resume"))
    assert rates() == pytest.approx({1: 0.01, 2: 0.01, 3: 0.01, 4: 0.005, 5: 0.01, 6: 0.005})
    with pytest.raises(SystemExit, match="--anneal-steps 9"):
        train.main(_argv(run_files, out, "--iterations", "6", "--anneal-steps", "9"))


def test_a_spent_time_budget_ends_the_run_with_its_expert_and_the_steps_it_ran(run_files, caplog):
    """--time-budget: the pool is encoded before the clock starts (else the budget's probe would time the
    encoding), the run ends when the time is spent, and settings.json records the steps it ran."""
    import logging

    from training import train

    out = run_files["dir"] / "budget"
    with caplog.at_level(logging.INFO, logger="training.train"):
        path = train.main(_argv(run_files, out, "--iterations", "6", "--pool", "2", "--time-budget", "0.001"))
    assert path is not None and path.is_file()
    assert json.loads((out / "settings.json").read_text())["iterations"] == 1
    assert [json.loads(x)["step"] for x in (out / "loss.jsonl").read_text().splitlines()] == [1]
    assert 0 <= caplog.text.index("encoded 2 pool clips") < caplog.text.index("spent at step 1 of 6")


def test_effect_weight_finds_the_shadow_cells_even_in_an_old_pool_cache(run_files):
    """--effect-weight: the pool's clips carry their effect cells (a cache written before they were stored gets
    them by rendering the clip again), and the weighted loss differs from the plain one on the same batch."""
    import comfy.model_management as mm

    from training.encode import latent_cells, load_encoded, save_encoded
    from training.objective import alpha_flow_loss

    cache = run_files["dir"] / "old_cache"
    writer = _trainer(run_files, run_files["dir"] / "cache_writer", "--pool", "2", "--pool-cache", str(cache),
                      "--shadow-prob", "1")
    for key in range(2):
        old = writer.encoded(key)
        assert old.effect_cells is not None
        old.effect_cells = None  # as a cache from before effect cells were stored
        save_encoded(old, cache / f"seed0_clip{key:05d}.safetensors")
    assert load_encoded(cache / "seed0_clip00000.safetensors").effect_cells is None
    trainer = _trainer(run_files, run_files["dir"] / "weighted", "--pool", "2", "--pool-cache", str(cache),
                       "--shadow-prob", "1", "--effect-weight", "8")
    batch = trainer.batch([0, 1])
    expected = torch.cat([latent_cells(trainer.inputs.clips.clip(k).shadow_region) for k in range(2)])
    assert torch.equal(batch.effect_cells, expected) and batch.effect_cells.shape[2:] == batch.x0.shape[2:]
    assert 0 < float(expected.mean()) < 0.5  # the shadows cover some cells, not all
    previous, mm.in_training = getattr(mm, "in_training", False), True
    try:
        with torch.no_grad():
            plain = float(alpha_flow_loss(trainer.trainable, batch))
            weighted = float(alpha_flow_loss(trainer.trainable, batch, effect_weight=8.0))
    finally:
        mm.in_training = previous
    assert abs(weighted - plain) > 1e-4 * plain
    assert trainer.settings()["effect_weight"] == 8.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_run_matches_one_process(run_files):
    from training import train

    ddp_out, single_out = run_files["dir"] / "ddp", run_files["dir"] / "single"
    torchrun = Path(sys.executable).parent / "torchrun"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun), "--nproc_per_node=2", f"--master_port={_free_port()}", "-m", "training.train",
           *_argv(run_files, ddp_out, "--iterations", "2")]
    proc = subprocess.run(cmd, cwd=PACK_DIR, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the same global batch in one process: 2 micro-batches accumulated
    single = train.main(_argv(run_files, single_out, "--iterations", "2", "--accumulation", "2"))
    assert [p.name for p in ddp_out.glob("*.safetensors")] == ["effect_expert.safetensors"]
    assert len((ddp_out / "loss.jsonl").read_text().splitlines()) == 2, "only rank 0 writes"
    ddp, one = load_file(str(ddp_out / "effect_expert.safetensors")), load_file(str(single))
    assert all(torch.allclose(ddp[k], one[k], atol=1e-6, rtol=0) for k in one)
    assert any(float(one[k].abs().max()) > 0 for k in one if "lora_B" in k)
    settings = json.loads((ddp_out / "settings.json").read_text())
    assert settings["world"] == 2


def test_data_workers_change_speed_not_content(run_files):
    from training import train

    one = train.main(_argv(run_files, run_files["dir"] / "w0", "--iterations", "2", "--batch", "2"))
    two = train.main(_argv(run_files, run_files["dir"] / "w2", "--iterations", "2", "--batch", "2",
                           "--data-workers", "2"))
    a, b = load_file(str(one)), load_file(str(two))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_base_lora_is_part_of_the_frozen_base(run_files):
    """The 14B Casper recipe: Wan2.1-Fun-14B-InP + a LoRA (weight patch) as the frozen base."""
    from safetensors.torch import save_file

    gen = torch.Generator().manual_seed(5)
    lora = {"diffusion_model.blocks.1.ffn.0.lora_A.weight": torch.randn(4, 128, generator=gen),
            "diffusion_model.blocks.1.ffn.0.lora_B.weight": torch.randn(256, 4, generator=gen)}
    save_file(lora, str(run_files["dir"] / "base_lora.safetensors"))
    losses = []
    for extra in ([], ["--base-lora", f"{run_files['dir'] / 'base_lora.safetensors'}:0.5"]):
        trainer = _trainer(run_files, run_files["dir"] / "lora", "--iterations", "1", *extra)
        assert bool(trainer.inputs.base.patches) == bool(extra)
        losses.append(trainer.held_out_loss(1))
    assert losses[0] != losses[1], "the base LoRA did not reach the forward"
    assert trainer.run() is not None  # trains through the patched base (its own model object: no leak)
