"""The toy-world build's bookkeeping for short GPU leases (issue 22): time-fitted step counts, the command
that repeats a fitted stage, and how the best of several VAE runs is picked. Plain Python, no models."""

from __future__ import annotations

import json
import time

import pytest

from training import toy_vae, vae_ranking
from training.loop import TimeBudget
from training.build_records import vae_ancestry, with_fixed_steps


def test_time_budget_fits_steps_after_the_probe(monkeypatch):
    # started at 0; a slow first 10 steps (8 s: autotuning), then 20 steps in 5 s → 4 steps per second
    clock = iter([0.0, 8.0, 13.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    budget = TimeBudget(43.0, probe=30, multiple=10, warmup=10)
    assert budget.iterations(9, 1000) == 1000  # warming up: no clock read
    assert budget.iterations(10, 1000) == 1000  # the mark
    assert budget.iterations(30, 1000) == 150  # 30 + 30 s left × 4 steps/s = 150 (the warm-up not counted)
    assert budget.iterations(60, 1000) == 1000  # fixed once: later calls leave the caller's count alone


def test_time_budget_never_grows_the_run_and_none_means_no_budget(monkeypatch):
    clock = iter([0.0, 1.0, 2.0, 5.0, 5.0])
    monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
    budget = TimeBudget(1000.0, probe=20, warmup=10)
    assert budget.iterations(10, 50) == 50 and budget.iterations(20, 50) == 50
    unlimited = TimeBudget(None)
    assert unlimited.iterations(500, 700) == 700 and not unlimited.expired()


def test_a_fitted_run_keeps_its_whole_learning_rate_decay(monkeypatch):
    # 4 steps per second after the probe, 30 s left: 150 steps, unless the decay asks for more
    for decay, expected in ((100, 150), (400, 400), (5000, 1000)):
        clock = iter([0.0, 8.0, 13.0])
        monkeypatch.setattr(time, "perf_counter", lambda: next(clock))
        budget = TimeBudget(43.0, probe=30, multiple=10, warmup=10)
        assert budget.iterations_with_decay(9, 1000, decay) == 1000
        assert budget.iterations_with_decay(10, 1000, decay) == 1000
        assert budget.iterations_with_decay(30, 1000, decay) == expected


def test_fitted_commands_repeat_with_the_steps_they_ran():
    command = "python -m training.toy_remover --vae a.safetensors --iterations 50000 --time-budget 120 --pool 512"
    assert with_fixed_steps(command, 4150) == \
        "python -m training.toy_remover --vae a.safetensors --pool 512 --iterations 4150"


def _vae_run(folder, **ceiling):
    folder.mkdir()
    (folder / toy_vae.FILE_NAME).write_bytes(b"")
    (folder / "metrics.json").write_text(json.dumps({"ceiling": ceiling}))
    return folder


def test_pick_best_prefers_goals_met_then_margin(tmp_path):
    blurred = _vae_run(tmp_path / "blurred", alpha_mae_object=0.16, alpha_mae_shadow=0.16, video_psnr=33.0,
                       plate_psnr_region=34.0)
    sharp = _vae_run(tmp_path / "sharp", alpha_mae_object=0.03, alpha_mae_shadow=0.05, video_psnr=31.0,
                     plate_psnr_region=32.0)
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    assert vae_ranking.ceiling_score(json.loads((sharp / "metrics.json").read_text())["ceiling"])[0] == 2
    assert vae_ranking.pick_best([blurred, sharp, unfinished]) == sharp  # 2 goals each; the sharp matte's margin wins


def test_an_adopted_vae_names_the_runs_it_was_fine_tuned_from(tmp_path):
    first, second, third = (tmp_path / n for n in ("r8", "f8a", "f8c"))
    for run, words in ((first, "--init random"), (second, f"--init-from {first}/toy_wan_vae.safetensors"),
                       (third, f"--init-from {second}/toy_wan_vae.safetensors")):
        run.mkdir()
        (run / "command.txt").write_text(f"python -m training.toy_vae --output {run} {words}\n")
    chain = vae_ancestry(third)
    assert [c.split("--output ")[1].split()[0] for c in chain] == [str(first), str(second)]
    assert vae_ancestry(first) == []
    (first / "command.txt").unlink()
    assert vae_ancestry(third)[0] == f"(unrecorded run that wrote {first})"


def test_curves_plot_every_stage_of_a_build(tmp_path):
    """training.curves: one panel per stage with at least two validations (the fine-tuned VAE's steps end to end)."""
    from PIL import Image

    from training.curves import plot_curves, vae_panel

    def write(path, records):
        path.mkdir(parents=True, exist_ok=True)
        (path / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))

    write(tmp_path / "r8", [{"step": 0, "psnr": 9.0, "psnr_alpha": 6.0}, {"step": 500, "psnr": 18.0, "psnr_alpha": 28.0}])
    write(tmp_path / "f8a", [{"step": 0, "psnr": 18.0, "psnr_alpha": 28.0}, {"step": 300, "psnr": 26.0, "psnr_alpha": 31.0}])
    write(tmp_path / "build" / "remover", [{"step": s, "psnr_removed_region": 18 + s / 500, "psnr_outside": 22.0}
                                           for s in (500, 1000)])
    for role in ("effect", "quality"):
        write(tmp_path / "build" / role, [{"step": s, "flow_loss": 1 / s, "object_mse": 0.1, "shadow_mse": 0.2}
                                          for s in (500, 1000)])
    _, xs, series, _ = vae_panel([tmp_path / "r8", tmp_path / "f8a"])
    assert xs == [0.0, 500.0, 800.0] and series["video PSNR"] == [9.0, 18.0, 26.0]
    out = plot_curves(tmp_path / "build", [tmp_path / "r8", tmp_path / "f8a"], tmp_path / "curves.png")
    with Image.open(out) as sheet:
        assert sheet.height == 5 * 400  # VAE, remover and three expert panels


def test_curves_compare_builds_on_shared_steps(tmp_path):
    """training.curves --compare: one line per build, aligned on the union of their steps (None where missing)."""
    from PIL import Image

    from training.curves import comparison_panels, main

    for name, steps in (("narrow", (500, 1000, 1500)), ("wide", (500, 1000))):
        for stage in ("remover", "effect", "quality"):
            folder = tmp_path / name / stage
            folder.mkdir(parents=True)
            (folder / "validation.jsonl").write_text("".join(json.dumps(
                {"step": s, "psnr_removed_region": 20 + s / 1000, "flow_loss": 1 / s, "shadow_mse": 0.1}) + "\n"
                for s in steps))
    panels = comparison_panels({"narrow": tmp_path / "narrow", "wide": tmp_path / "wide"})
    assert [title.split(":")[0] for title, *_ in panels] == ["Remover", "Effect Expert", "Quality Expert",
                                                              "Effect Expert", "Quality Expert"]
    _, xs, series, _ = panels[1]
    assert xs == [500.0, 1000.0, 1500.0] and series["wide"] == [1 / 500, 1 / 1000, None]
    main(["--compare", f"narrow={tmp_path / 'narrow'}", f"wide={tmp_path / 'wide'}", "--out", str(tmp_path / "c.png")])
    with Image.open(tmp_path / "c.png") as sheet:
        assert sheet.height == 5 * 400
    with pytest.raises(SystemExit):
        main(["--compare", str(tmp_path / "wide"), "--out", str(tmp_path / "d.png")])  # no NAME=


def test_effect_last_k_overrides_the_analysis_only_within_the_model(tmp_path):
    from training import toy_world

    assert toy_world.effect_last_k(2, None) == 2  # no override: the block analysis's suggestion
    assert toy_world.effect_last_k(2, 3) == 3
    assert toy_world.effect_last_k(2, 6, blocks=6) == 6
    for bad in (0, 7):
        with pytest.raises(SystemExit, match="give 1 to 6"):
            toy_world.effect_last_k(2, bad, blocks=6)
    args = toy_world.parser().parse_args(["--work", str(tmp_path / "b"), "--effect-last-k", "3"])
    build = toy_world.Build(args)
    assert build.effect_blocks(2) == 3
    assert json.loads(build.state_path.read_text())["effect_last_k"] == {"suggested": 2, "used": 3}
    assert "--last-k 3" in " ".join(build.expert_argv("effect", tmp_path, tmp_path, tmp_path, 3))


def test_the_remover_width_and_file_precision_reach_the_remover_stage(tmp_path, monkeypatch):
    from training import toy_remover, toy_world

    args = toy_world.parser().parse_args(["--work", str(tmp_path / "b"), "--remover-dim", "256",
                                          "--remover-ffn-dim", "1024", "--remover-dtype", "fp16"])
    calls = []  # the stage's own parsed arguments; the trainer itself is not run here
    monkeypatch.setattr(toy_remover, "RemoverTrainer", lambda parsed: calls.append(parsed) or _Stopped())
    with pytest.raises(SystemExit, match="stage remover stopped"):
        toy_world.Build(args).remover(tmp_path / "vae.safetensors", tmp_path / "text.safetensors")
    (parsed,) = calls
    assert (parsed.dim, parsed.ffn_dim, parsed.export_dtype) == (256, 1024, "fp16")
    state = json.loads((tmp_path / "b" / "build_state.json").read_text())
    assert "--dim 256 --ffn-dim 1024 --export-dtype fp16" in state["stages"]["remover"]["command"]


class _Stopped:
    def run(self):
        return None


def test_every_build_stage_file_is_in_the_stages_manifest():
    """toy_world_build/manifest.json lists each stage's .safetensors with its sha256, size and the file that
    says how it was made; a changed, added or dropped file fails here until the manifest is rewritten
    (python -m training.build_records toy_world_build)."""
    from pathlib import Path

    from training.build_records import stage_files

    stages = Path(__file__).resolve().parents[1] / "toy_world_build"
    listed = json.loads((stages / "manifest.json").read_text())["files"]
    assert listed == stage_files(stages)
    assert all(entry["made_by"] for entry in listed.values())



def test_the_finetune_resumes_each_experts_last_checkpoint_in_a_run_of_its_own(tmp_path, monkeypatch):
    """--expert-anneal-steps reaches the experts' runs; --finetune-steps adds a run that starts from a copy of
    the expert's last checkpoint (so --resume continues there) with the effect-weighted loss and a fresh rate."""
    from pathlib import Path

    from training import toy_world, train

    work = tmp_path / "b"
    args = toy_world.parser().parse_args(["--work", str(work), "--expert-iterations", "300", "--expert-anneal-steps",
                                          "100", "--finetune-steps", "50", "--finetune-lr", "2e-4",
                                          "--finetune-effect-weight", "16"])
    build = toy_world.Build(args)
    first = " ".join(build.expert_argv("quality", tmp_path, tmp_path, tmp_path, 3))
    assert "--iterations 300" in first and "--anneal-steps 100" in first and "--effect-weight" not in first
    expert_run = work / "quality"
    (expert_run / "checkpoints").mkdir(parents=True)
    for step in (200, 300):  # a finished expert run keeps its last checkpoints
        (expert_run / "checkpoints" / f"step_{step:06d}.safetensors").write_bytes(b"weights %d" % step)
        (expert_run / "checkpoints" / f"step_{step:06d}.json").write_text(json.dumps({"step": step}))
    (expert_run / "loss.jsonl").write_text('{"step": 300, "loss": 0.2, "seconds": 1.0}\n')
    build.state["stages"]["quality"] = {"command": "python -m training.train --role quality", "seconds": 30.0}
    calls = []

    def trained(argv):  # the trainer's own resume is tested in tests/test_training_train.py
        calls.append(argv)
        out = Path(argv[argv.index("--output") + 1]) / "quality_expert.safetensors"
        out.write_bytes(b"expert")
        return out

    monkeypatch.setattr(train, "main", trained)
    cut_short = work / "quality_finetune.partial" / "checkpoints"  # a copy that an interrupt cut short
    cut_short.mkdir(parents=True)
    (cut_short / "step_000100.json").write_text("{")
    out = build.finetune("quality", tmp_path, tmp_path, tmp_path, 3)
    assert not (work / "quality_finetune.partial").exists()
    assert out == work / "quality_finetune" / "quality_expert.safetensors"
    assert sorted(p.name for p in (work / "quality_finetune" / "checkpoints").iterdir()) == \
        ["step_000300.json", "step_000300.safetensors"]
    assert (work / "quality_finetune" / "loss.jsonl").read_text() == (expert_run / "loss.jsonl").read_text()
    words = " ".join(calls[0])
    for part in ("--iterations 350", "--lr 0.0002", "--anneal-steps 50", "--effect-weight 16.0", "--resume",
                 f"--output {work / 'quality_finetune'}"):
        assert part in words, part
    recorded = json.loads(build.state_path.read_text())["stages"]["quality_finetune"]
    assert recorded["command"] == "python -m training.train " + " ".join(calls[0])
    with pytest.raises(SystemExit, match="no checkpoint to fine-tune from"):
        build.finetune("effect", tmp_path, tmp_path, tmp_path, 3)


def test_a_finetune_after_an_expert_cut_short_runs_its_own_steps_within_its_budget(tmp_path):
    """An expert that a time budget ended at step 200 of 300: its fine-tune runs --finetune-steps past 200 (not
    past 300, which would add the expert's missing steps to the fine-tune), under --finetune-time-budget."""
    from training import finetune_run, toy_world

    work = tmp_path / "b"
    args = toy_world.parser().parse_args(["--work", str(work), "--expert-iterations", "300", "--finetune-steps", "50",
                                          "--expert-time-budget", "90", "--finetune-time-budget", "40"])
    build = toy_world.Build(args)
    first = " ".join(build.expert_argv("effect", tmp_path, tmp_path, tmp_path, 3))
    assert "--iterations 300" in first and "--time-budget 90.0" in first
    (work / "effect" / "checkpoints").mkdir(parents=True)
    (work / "effect" / "checkpoints" / "step_000200.safetensors").write_bytes(b"weights")
    (work / "effect" / "checkpoints" / "step_000200.json").write_text(json.dumps({"step": 200}))
    run = finetune_run.seed_finetune_run(work, "effect")
    assert json.loads((run / "started_from.json").read_text())["step"] == 200
    words = " ".join(build.expert_argv("effect", tmp_path, tmp_path, tmp_path, 3, finetune=True))
    assert "--iterations 250" in words and "--anneal-steps 50" in words and "--time-budget 40.0" in words
    assert finetune_run.seed_finetune_run(work, "effect") == run  # made once: a resumed fine-tune keeps its start
