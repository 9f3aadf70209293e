"""``run.sh --batch DIR --ray [ADDRESS]``: a batch's clips across Ray workers, each keeping its models loaded.

Ray (an optional dependency: ``pip install "ray[default]"``) starts one actor per GPU (``num_gpus=1``;
on a host without GPUs, ``--workers N`` actors), each a ComfyUI process with this pack loaded once.
Clips go out longest first as workers free up; each worker writes into ``--out``, which must be a path
every node sees (as on any render farm), as must the batch folder, this pack and ComfyUI. A worker that
dies mid-clip leaves only a hidden staging folder (omnimatte_core.staging); its clip goes back to the
front of the queue and a new worker takes the dead one's place. Only this module imports Ray: the
single-clip and plain ``--batch`` paths never do.
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from omnimatte_run import batch_clips
from omnimatte_host import comfy_host
from omnimatte_run import run_logging
from omnimatte_run.batch_clips import Clip
from omnimatte_run.graph_run import GraphRunner, RunError

log = logging.getLogger("omnimatte.batch")
ATTEMPTS = 2  # a clip whose worker dies this many times is reported failed (it may be what kills them)
STARTS = 3  # a local cluster gets 30 s to start (Ray's fixed limit); on a loaded machine it may need another go
NO_RAY = ("--ray needs Ray, an optional dependency: install it into the runner's environment with "
          "`\"$OMNIMATTE_PY\" -m pip install \"ray[default]\"` (source scripts/env.sh first), or run without --ray.")


class ClipWorker:
    """One ComfyUI process on one GPU (or CPU): loads the pack once, then runs clips as they come."""

    def __init__(self, args: argparse.Namespace, comfy_path: Path):
        from omnimatte_run.single_run import load_host

        self.args = args
        run_logging.setup(args.out, args.verbose)
        for handler in logging.getLogger().handlers:  # Ray forwards the console: warnings only, the rest in the log
            if type(handler) is logging.StreamHandler and not args.verbose:
                handler.setLevel(logging.WARNING)
        comfy_host.import_comfy(comfy_path, args.threads)
        load_host(args)
        self.runner = GraphRunner()

    def pid(self) -> int:
        return os.getpid()

    def run(self, clip: Clip) -> Clip:
        log.info("worker %d: clip %s", os.getpid(), clip.name)
        batch_clips.run_clip(self.args, clip, self.runner)
        return clip


def import_ray():
    try:
        import ray
    except ImportError as err:
        raise RunError(NO_RAY) from err
    return ray


def start(ray, args: argparse.Namespace) -> int:
    """Join the cluster (``--ray ADDRESS``) or start a local one; → how many workers to run."""
    # the pack's packages importable in every worker; no progress bars forwarded from each (the driver reports each clip)
    environment = {"env_vars": {"PYTHONPATH": str(comfy_host.PACK_DIR), "TQDM_DISABLE": "1"}}
    if args.ray == "local":
        cpus = max(os.cpu_count() or 1, (args.workers or 1) * (args.threads or 1))
        start_local(ray, num_cpus=cpus, include_dashboard=False, runtime_env=environment,
                    logging_level=logging.WARNING)
    else:
        try:
            ray.init(address=args.ray, runtime_env=environment, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise RunError(f"--ray {args.ray}: no Ray cluster answered there ({batch_clips.first_line(err)}). Give the "
                           "head node's address as `ray status` on it shows (HOST:6379), or --ray alone for a "
                           "local cluster.") from err
    gpus = int(ray.cluster_resources().get("GPU", 0))
    workers = min(args.workers, gpus) if args.workers and gpus else args.workers or gpus or 1
    log.info("ray: %s cluster, %d GPU(s), %d worker(s)", "a local" if args.ray == "local" else args.ray, gpus,
             workers)
    return workers


def start_local(ray, **options) -> None:
    """A new local cluster, tried ``STARTS`` times: Ray gives its raylet a fixed 30 s to register."""
    for attempt in range(1, STARTS + 1):
        try:
            ray.init(address="local", **options)
            return
        except Exception as err:  # noqa: BLE001 - Ray raises a bare Exception for a start-up time-out
            ray.shutdown()
            if attempt == STARTS:
                raise RunError(f"--ray: the local Ray cluster did not start in {STARTS} tries ({batch_clips.first_line(err)})"
                               ". The machine may be overloaded: try again later, or run without --ray.") from err
            log.warning("ray: the local cluster did not start (%s); trying again", batch_clips.first_line(err))


def run(args: argparse.Namespace, clips: list[Clip], comfy_path: Path) -> None:
    """Every clip to run, longest first, on the cluster's workers; statuses land in ``clips``."""
    ray = import_ray()
    workers = start(ray, args)
    try:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        actor = ray.remote(num_gpus=1 if gpus else 0, num_cpus=args.threads or 1, max_restarts=0)(ClipWorker)
        Scheduler(ray, lambda: actor.remote(args, comfy_path), workers).run(
            sorted((c for c in clips if c.status == "to run"), key=lambda c: (-c.frames, c.name)))
    finally:
        ray.shutdown()


class Scheduler:
    """Hands the queue's next clip to whichever worker is free; a dead worker's clip goes back to the front."""

    def __init__(self, ray, new_worker, workers: int):
        self.ray, self.new_worker = ray, new_worker
        self.idle = [new_worker() for _ in range(workers)]
        self.running: dict = {}  # Ray object ref → (worker, clip)
        self.attempts: dict[str, int] = {}

    def run(self, queue: list[Clip]) -> None:
        total, finished = len(queue), 0
        while queue or self.running:
            while queue and self.idle:
                clip, worker = queue.pop(0), self.idle.pop(0)
                self.attempts[clip.name] = self.attempts.get(clip.name, 0) + 1
                log.info("clip %s (%d frames): handed to a worker, attempt %d", clip.name, clip.frames,
                         self.attempts[clip.name])
                self.running[worker.run.remote(clip)] = (worker, clip)
            (ready,), _ = self.ray.wait(list(self.running), num_returns=1)
            worker, clip = self.running.pop(ready)
            if self._collect(ready, worker, clip, queue):
                finished += 1
                log.info("[%d/%d] clip %s: %s in %.1f s", finished, total, clip.name, clip.status, clip.seconds or 0)

    def _collect(self, ready, worker, clip: Clip, queue: list[Clip]) -> bool:
        """The clip's result into ``clip``; → False when its worker died and the clip was queued again."""
        try:
            done = self.ray.get(ready)
        except self.ray.exceptions.RayActorError as err:
            self.idle.append(self.new_worker())  # a new worker takes the dead one's place
            if self.attempts[clip.name] < ATTEMPTS:
                log.warning("clip %s: its worker died (%s); running it again on another worker", clip.name,
                            batch_clips.first_line(err))
                queue.insert(0, clip)
                return False
            clip.status, clip.reason = "failed", f"its worker died {ATTEMPTS} times ({batch_clips.first_line(err)})"
            return True
        for name in ("status", "reason", "seconds", "cpu_seconds"):  # what the worker's copy learned
            setattr(clip, name, getattr(done, name))
        self.idle.append(worker)
        return True
