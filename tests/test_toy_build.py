"""The toy-world build's bookkeeping for short GPU leases (issue 22): time-fitted step counts, the command
that repeats a fitted stage, and how the best of several VAE runs is picked. Plain Python, no models."""

from __future__ import annotations

import json
import time

from training import toy_vae
from training.loop import TimeBudget
from training.toy_world import vae_ancestry, with_fixed_steps


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
    assert toy_vae.ceiling_score(json.loads((sharp / "metrics.json").read_text())["ceiling"])[0] == 2
    assert toy_vae.pick_best([blurred, sharp, unfinished]) == sharp  # 2 goals each; the sharp matte's margin wins


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
