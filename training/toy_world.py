"""``python -m training.toy_world --work DIR [--resume]``: rebuild the whole toy world (docs/toy_world.md).

Stages, each resumable and skipped once its output exists: the cached text embedding, the
VAE (``training.toy_vae``), the Casper-like remover (``training.toy_remover``), the block
analysis (``training.analyze_blocks`` → K), the Effect and Quality experts (``training.train``), each
followed by its effect-weighted fine-tune when ``--finetune-steps`` is given, then the package: the files copied into the pack's ``toy_world/`` folders with a manifest
(sha256, command, seed, wall time summed over resumed segments, final metrics).
Interrupt it at any point; ``--resume`` continues where it stopped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import shutil
import sys
import time
from pathlib import Path

from . import common, toy_remover
from .finetune_run import finetune_start_step, seed_finetune_run
from .build_records import FP32_VAE_PREFIX, device_name, stage_metrics, vae_ancestry, with_fixed_steps
from .toy_data import FRAMES, HEIGHT, TOY_CONFIG, WIDTH
from .world_files import PACK_DIR, SHIPPED, TOY_DIR, place_demo_clips, place_stage, world_header

log = logging.getLogger("training.toy_world")
TEXT_TOKENS, TEXT_SEED = 16, 7
EFFECT_RANK, QUALITY_RANK = 128, 64  # the paper's ranks


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.toy_world", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path.home() / ".cache" / "easy-omnimatte" / "toy-build",
                   help="run folders, checkpoints and logs (outside the checkout)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted build in --work")
    p.add_argument("--until", choices=list(SHIPPED) + ["analyze", "package"], default="package",
                   help="stop after this stage")
    p.add_argument("--vae-iterations", type=int, default=6000, help="VAE reconstruction steps")
    p.add_argument("--vae-dim", type=int, default=16, help="VAE width")
    p.add_argument("--vae-init", choices=("codec", "random"), default="codec")
    p.add_argument("--vae-lr", type=float, default=5e-4)
    p.add_argument("--vae-from", type=Path, nargs="+", default=None, metavar="RUN",
                   help="adopt the best finished training.toy_vae run among these folders (by its ceiling, "
                        "issue 22's goals) instead of training one here")
    p.add_argument("--remover-iterations", type=int, default=4000)
    p.add_argument("--remover-dim", type=int, default=toy_remover.RemoverSpec.dim,
                   help="the remover's width (Wan: heads = width / 128)")
    p.add_argument("--remover-ffn-dim", type=int, default=toy_remover.RemoverSpec.ffn_dim,
                   help="the remover's feed-forward width")
    p.add_argument("--remover-dtype", choices=tuple(toy_remover.EXPORT_DTYPES), default="fp32",
                   help="precision of the remover file the experts train on and the toy world ships")
    p.add_argument("--expert-iterations", type=int, default=4000)
    p.add_argument("--expert-lr", type=float, default=1e-3, help="AdamW learning rate of the experts (paper: 1e-3)")
    p.add_argument("--expert-anneal-steps", type=int, default=0, metavar="N",
                   help="lower the experts' rate linearly to 0 over their last N steps (0: constant, the paper's)")
    p.add_argument("--finetune-steps", type=int, default=0, metavar="N",
                   help="then N more steps of each expert in its own run folder, resuming its last checkpoint with "
                        "the flow loss weighted on the effect (ours; 0: none, the paper's)")
    p.add_argument("--finetune-lr", type=float, default=5e-4,
                   help="the fine-tune's rate, restarting there and falling linearly to 0")
    p.add_argument("--finetune-effect-weight", type=float, default=8.0, metavar="LAMBDA",
                   help="training.train --effect-weight of the fine-tune: weight 1 + LAMBDA on the effect's cells")
    p.add_argument("--remover-pool", type=int, default=512, help="training clips the remover encodes once")
    p.add_argument("--expert-pool", type=int, default=192, help="training clips the experts encode once (shared)")
    p.add_argument("--val-steps", type=int, default=12, help="sampling steps of the in-training validations")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=0, help="processes rendering training clips")
    p.add_argument("--remover-time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit the remover's steps to this wall time (a GPU lease)")
    p.add_argument("--expert-time-budget", type=float, default=None, metavar="SECONDS",
                   help="fit each expert's steps to this wall time (a GPU lease; the steps run are recorded)")
    p.add_argument("--finetune-time-budget", type=float, default=None, metavar="SECONDS",
                   help="the same for each fine-tune (shortened, it starts part-way down its falling rate)")
    p.add_argument("--effect-last-k", type=int, default=None, metavar="K",
                   help="put the Effect Expert on the last K blocks instead of the block analysis's suggestion "
                        "(both are recorded in the build state)")
    p.add_argument("--parallel-experts", action="store_true",
                   help="train the Effect and Quality experts at once, in two processes (one GPU has room)")
    p.add_argument("--package-to", type=Path, default=TOY_DIR, help="where the shipped files go")
    return p


class Build:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.work: Path = args.work
        self.state_path = self.work / "build_state.json"
        if self.work.exists() and any(self.work.iterdir()) and not args.resume:
            raise SystemExit(f"{self.work} already holds a build: add --resume to continue it, or pass another --work")
        self.work.mkdir(parents=True, exist_ok=True)
        self.state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {"stages": {}}

    # -- bookkeeping ---------------------------------------------------------------------------
    def run_stage(self, name: str, output: Path, command: list[str], call) -> Path:
        """Run ``call()`` unless ``output`` exists; wall time is summed over resumed segments."""
        record = self.state["stages"].setdefault(name, {"seconds": 0.0})
        record.setdefault("command", shlex.join(["python", "-m", *command]))  # the command that made the file
        if output.is_file():
            self.save_state()
            return output
        record["command"] = shlex.join(["python", "-m", *command])
        started = time.perf_counter()
        try:
            result = call()
        finally:
            record["seconds"] = round(record["seconds"] + time.perf_counter() - started, 1)
            self.save_state()
        if result is None or not output.is_file():
            raise SystemExit(f"stage {name} stopped before writing {output}; run again with --resume")
        return output

    def save_state(self) -> None:
        self.state_path.write_text(json.dumps(self.state, indent=1))

    def resume_flag(self, run_dir: Path) -> list[str]:
        return ["--resume"] if (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").iterdir()) else []

    # -- stages --------------------------------------------------------------------------------
    def text(self) -> Path:
        path = self.work / "text" / SHIPPED["text"][1]

        def write():
            import torch

            from omnimatte_core.text_embeds import save_conditioning

            path.parent.mkdir(parents=True, exist_ok=True)
            gen = torch.Generator().manual_seed(TEXT_SEED)
            tokens = torch.randn(1, TEXT_TOKENS, toy_remover.TEXT_DIM, generator=gen)  # a fixed toy "caption"
            save_conditioning([[tokens, {"pooled_output": None}]], path)
            return path
        return self.run_stage("text", path, ["training.toy_world", "--until", "text"], write)

    def vae(self) -> Path:
        from . import toy_vae, vae_ranking

        run = self.work / "vae"
        if self.args.vae_from and not (run / toy_vae.FILE_NAME).is_file():
            self.adopt_vae(vae_ranking.pick_best(self.args.vae_from), run)
        a = self.args
        argv = ["--output", str(run), "--iterations", str(a.vae_iterations), "--dim", str(a.vae_dim),
                "--init", a.vae_init, "--lr", str(a.vae_lr), "--threads", str(a.threads), "--workers", str(a.workers)]
        return self.run_stage("vae", run / toy_vae.FILE_NAME, ["training.toy_vae", *argv],
                              lambda: toy_vae.VaeTrainer(toy_vae.parser().parse_args(argv + self.resume_flag(run))).run())

    def adopt_vae(self, chosen: Path, run: Path) -> None:
        """Take a finished toy_vae run (trained beside this build, e.g. several settings at once on a GPU)."""
        shutil.copytree(chosen, run, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoints"))
        record = self.state["stages"].setdefault("vae", {"seconds": 0.0})
        steps = json.loads((chosen / "metrics.json").read_text())["steps"]
        record["command"] = with_fixed_steps((chosen / "command.txt").read_text().strip(), steps)
        record["seconds"] = round(sum(json.loads(line)["seconds"] for line in (chosen / "loss.jsonl").open()), 1)
        record["chosen_from"] = [str(p) for p in self.args.vae_from]
        self.save_state()
        log.info("adopted the VAE run %s", chosen)

    def remover(self, vae: Path, text: Path) -> Path:
        run = self.work / "remover"
        argv = ["--vae", str(vae), "--text-embeds", str(text), "--output", str(run),
                "--iterations", str(self.args.remover_iterations), "--threads", str(self.args.threads),
                "--pool", str(self.args.remover_pool), "--val-steps", str(self.args.val_steps),
                "--workers", str(self.args.workers), "--dim", str(self.args.remover_dim),
                "--ffn-dim", str(self.args.remover_ffn_dim), "--export-dtype", self.args.remover_dtype]
        if self.args.remover_time_budget:
            argv += ["--time-budget", str(self.args.remover_time_budget)]
        out = self.run_stage("remover", run / toy_remover.FILE_NAME, ["training.toy_remover", *argv],
                             lambda: toy_remover.RemoverTrainer(
                                 toy_remover.parser().parse_args(argv + self.resume_flag(run))).run())
        self.record_steps_run("remover", run)
        return out

    def record_steps_run(self, stage: str, run: Path) -> None:
        """A stage fitted to a time budget: record the command that repeats it with the steps it ran."""
        record = self.state["stages"][stage]
        if "--time-budget" in record["command"] and (run / "loss.jsonl").is_file():
            steps = json.loads((run / "loss.jsonl").read_text().splitlines()[-1])["step"]
            record["command"] = with_fixed_steps(record["command"], steps)
            self.save_state()

    def model_argv(self, remover: Path, vae: Path, text: Path) -> list[str]:
        c = TOY_CONFIG
        return ["--model", str(remover), "--vae", str(vae), "--text-embeds", str(text), "--height", str(HEIGHT),
                "--width", str(WIDTH), "--frames", str(FRAMES), "--shadow-prob", str(c.shadow_prob),
                "--camera-prob", str(c.camera_prob), "--keep-prob", str(c.keep_prob), "--seed", str(c.seed),
                "--threads", str(self.args.threads)]

    def analyze(self, remover: Path, vae: Path, text: Path) -> int:
        from . import analyze_blocks

        run = self.work / "analyze"
        argv = self.model_argv(remover, vae, text) + ["--output", str(run), "--clips", "8", "--shadow-prob", "1"]
        out = run / "block_scores.json"
        self.run_stage("analyze", out, ["training.analyze_blocks", *argv], lambda: analyze_blocks.main(argv) or out)
        return int(json.loads(out.read_text())["suggested_k"])

    def effect_blocks(self, suggested: int) -> int:
        """K for the Effect Expert: ``--effect-last-k`` if given, else the analysis's; both recorded."""
        chosen = effect_last_k(suggested, self.args.effect_last_k)
        self.state["effect_last_k"] = {"suggested": suggested, "used": chosen}
        self.save_state()
        return chosen

    def expert_argv(self, role: str, remover: Path, vae: Path, text: Path, last_k: int,
                    finetune: bool = False) -> list[str]:
        """Both experts: the same data, steps, batch and learning rate (a fair ablation); the paper's ranks.
        ``finetune``: the effect-weighted phase after it, in its own run folder, ``--finetune-steps`` more
        than the expert ran (fewer than asked when a time budget ended it)."""
        a = self.args
        rank = EFFECT_RANK if role == "effect" else QUALITY_RANK
        cache = self.work / (f"pool_cache_{role}" if a.parallel_experts else "pool_cache")  # no write races
        if finetune:
            run, lr, budget = self.work / f"{role}_finetune", a.finetune_lr, a.finetune_time_budget
            iterations = finetune_start_step(self.work / f"{role}_finetune", a.expert_iterations) + a.finetune_steps
            schedule = ["--anneal-steps", str(a.finetune_steps), "--effect-weight", str(a.finetune_effect_weight)]
        else:
            run, iterations, lr, budget = self.work / role, a.expert_iterations, a.expert_lr, a.expert_time_budget
            schedule = ["--anneal-steps", str(a.expert_anneal_steps)] if a.expert_anneal_steps else []
        argv = self.model_argv(remover, vae, text) + [
            "--role", role, "--output", str(run), "--rank", str(rank),
            "--iterations", str(iterations), "--batch", "2", "--pool", str(a.expert_pool),
            "--pool-cache", str(cache), "--lr", str(lr), "--precision", "fp32", "--checkpoint-every", "100",
            "--val-every", "500", "--val-clips", "4", "--val-steps", str(a.val_steps), "--no-progress",
            "--name", f"{role}_expert.safetensors", *schedule]
        if budget:
            argv += ["--time-budget", str(budget)]
        return argv + (["--last-k", str(last_k)] if role == "effect" else [])

    def expert(self, role: str, remover: Path, vae: Path, text: Path, last_k: int) -> Path:
        from . import train

        run = self.work / role
        argv = self.expert_argv(role, remover, vae, text, last_k)
        out = run / f"{role}_expert.safetensors"
        self.run_stage(role, out, ["training.train", *argv], lambda: train.main(argv + self.resume_flag(run)))
        self.record_steps_run(role, run)
        return out

    def finetune(self, role: str, remover: Path, vae: Path, text: Path, last_k: int) -> Path:
        """The effect-weighted phase (``--finetune-steps``): a run folder of its own that starts from a copy of
        the expert run's last checkpoint (optimiser state included) and its logs, so ``--resume`` continues
        there with the rate restarting at ``--finetune-lr``; the expert's own run stays as it finished."""
        from . import train

        run, stage = seed_finetune_run(self.work, role), f"{role}_finetune"
        argv = self.expert_argv(role, remover, vae, text, last_k, finetune=True)
        out = run / f"{role}_expert.safetensors"
        self.run_stage(stage, out, ["training.train", *argv, "--resume"], lambda: train.main(argv + ["--resume"]))
        self.record_steps_run(stage, run)
        return out

    def extend_finished_expert(self, role: str) -> None:
        """``--resume`` with more ``--expert-iterations`` than a finished expert ran: train it on.

        The finished file is kept beside as ``<role>_expert.step<N>.safetensors`` and training resumes from
        its last checkpoint at the same constant rate (the expert trainer has no schedule unless given
        ``--anneal-steps``), as docs/toy_world.md records.
        """
        run = self.work / role
        done, settings = run / f"{role}_expert.safetensors", run / "settings.json"
        if not (done.is_file() and settings.is_file()):
            return
        ran = int(json.loads(settings.read_text())["iterations"])
        if ran >= self.args.expert_iterations:
            return
        kept = run / f"{role}_expert.step{ran}.safetensors"
        done.replace(kept)
        stale = self.work / f"{role}_finetune"
        if stale.exists():  # it started from the shorter run: set aside, made again from the longer one
            stale.replace(self.work / f"{role}_finetune.from_step{ran}")
            self.state["stages"].pop(f"{role}_finetune", None)
            self.save_state()
        log.info("the %s expert ran %d steps; training it on to %d (the %d-step file kept as %s)",
                 role, ran, self.args.expert_iterations, ran, kept.name)

    def experts_in_parallel(self, remover: Path, vae: Path, text: Path, last_k: int, finetune: bool = False) -> None:
        """Effect and Quality in two processes at once (their fine-tunes with ``finetune``); each stage's
        record as if run alone."""
        import subprocess

        jobs = {}
        for role in ("effect", "quality"):
            stage = f"{role}_finetune" if finetune else role
            run = seed_finetune_run(self.work, role) if finetune else self.work / role
            if (run / f"{role}_expert.safetensors").is_file():
                continue
            argv = self.expert_argv(role, remover, vae, text, last_k, finetune) + self.resume_flag(run)
            record = self.state["stages"].setdefault(stage, {"seconds": 0.0})
            record["command"] = shlex.join(["python", "-m", "training.train", *argv])
            jobs[stage] = (subprocess.Popen([sys.executable, "-m", "training.train", *argv], cwd=PACK_DIR),
                           time.perf_counter())
        self.save_state()
        for stage, (process, started) in jobs.items():
            code = process.wait()
            record = self.state["stages"][stage]
            record["seconds"] = round(record["seconds"] + time.perf_counter() - started, 1)
            self.save_state()
            if code:
                raise SystemExit(f"the {stage.replace('_', ' ')} training failed (exit {code}); run again with --resume")

    def package(self, files: dict[str, Path]) -> Path:
        dest: Path = self.args.package_to
        entries = {}
        for stage, path in files.items():
            record = self.state["stages"].get(stage, {})
            entries[stage] = {**place_stage(stage, path, dest, files["remover"]),
                              "command": record.get("command"), "wall_seconds": record.get("seconds"),
                              "device": self.state.get("device"),
                              "metrics": stage_metrics(self.work, stage)}
            ancestry = vae_ancestry(self.work / "vae") if stage == "vae" else []
            finetuned = self.state["stages"].get(f"{stage}_finetune")
            if finetuned:  # the expert's own run, then its effect-weighted phase, which made the file
                ancestry = [record.get("command")]
                entries[stage].update(command=finetuned.get("command"),
                                      metrics=stage_metrics(self.work, f"{stage}_finetune"),
                                      wall_seconds=round(record.get("seconds", 0) + finetuned.get("seconds", 0), 1))
            if ancestry:  # fine-tuned: the runs before it, oldest first
                entries[stage]["started_from"] = ancestry
        scores = self.work / "analyze" / "block_scores.json"
        if scores.is_file():
            shutil.copyfile(scores, dest / "block_scores.json")
        entries.update(place_demo_clips(dest))
        manifest = {"toy_world": world_header(self.state.get("command", "python -m training.toy_world --resume")),
                    "files": entries, "total_bytes": sum(e["bytes"] for e in entries.values())}
        path = dest / "manifest.json"
        path.write_text(json.dumps(manifest, indent=1) + "\n")
        log.info("packaged the toy world into %s (%d bytes)", dest, manifest["total_bytes"])
        return path

    def run(self) -> None:
        import comfy.model_management

        until = self.args.until
        self.state.setdefault("device", device_name(comfy.model_management.get_torch_device()))
        files = {"text": self.text()}
        if until == "text":
            return
        files["vae"] = self.vae()
        if until == "vae":
            return
        files["remover"] = self.remover(files["vae"], files["text"])
        if until == "remover":
            return
        k = self.effect_blocks(self.analyze(files["remover"], files["vae"], files["text"]))
        if until == "analyze":
            return
        for role in ("effect", "quality"):
            self.extend_finished_expert(role)
        if self.args.parallel_experts and until == "package":
            self.experts_in_parallel(files["remover"], files["vae"], files["text"], k)
            if self.args.finetune_steps:  # the loop below records each run's steps and skips the finished
                self.experts_in_parallel(files["remover"], files["vae"], files["text"], k, finetune=True)
        for role in ("effect", "quality"):
            files[role] = self.expert(role, files["remover"], files["vae"], files["text"], k)
            if self.args.finetune_steps:
                files[role] = self.finetune(role, files["remover"], files["vae"], files["text"], k)
            if until == role:
                return
        self.package(files)


def effect_last_k(suggested: int, override: int | None, blocks: int | None = None) -> int:
    """The Effect Expert's K: the override when given (1 ≤ K ≤ the model's blocks), else the suggestion."""
    if override is None:
        return suggested
    limit = blocks or toy_remover.RemoverSpec.num_layers
    if not 1 <= override <= limit:
        raise SystemExit(f"--effect-last-k {override}: the toy remover has {limit} blocks; give 1 to {limit}")
    return override


def main(argv: list[str] | None = None) -> None:
    import signal

    # a `kill` (or a session ending) then unwinds like Ctrl-C: the stage's wall time is still recorded
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = common.start_cli(parser(), argv)
    log.info("toy world build in %s (%s)", args.work, " ".join(sys.argv))
    build = Build(args)
    given = sys.argv[1:] if argv is None else argv
    env = FP32_VAE_PREFIX if os.environ.get("OMNIMATTE_FP32_VAE") == "1" else ""  # as the runs record it
    build.state.setdefault("command", env + shlex.join(["python", "-m", "training.toy_world", *given]))  # first start's
    build.run()


if __name__ == "__main__":
    main()
