"""`benchmarks.toy_table --toy-world DIR`: a build that is not shipped, assembled by `training.assemble_world`,
measured through the same loaders, nodes and clips as the shipped one (docs/toy_world.md)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness.toy_host import needs_toy_world
from omnimatte_host.comfy_host import PACK_DIR

SHIPPED = PACK_DIR / "toy_world"
BUILDS = PACK_DIR / "toy_world_build"
OTHER_VAE = BUILDS / "vae_r8" / "toy_wan_vae.safetensors"  # the shipped VAE's parent run: 18.5 dB, not 27.5
OTHER_REMOVER = BUILDS / "world_k3_8k" / "diffusion_models" / "easyomnimatte_toy_remover.safetensors"  # width 128
QUICK = ("--json", "--world", "second", "--clips", "1", "--steps", "2", "--no-sweep", "--threads", "2")

pytestmark = needs_toy_world


def _sha12(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _toy_table(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmarks.toy_table", *args], cwd=PACK_DIR, capture_output=True,
                          text=True, timeout=900)


def test_a_half_assembled_world_is_refused_before_the_host_starts(tmp_path):
    (tmp_path / "vae").mkdir()
    done = _toy_table(*QUICK, "--toy-world", str(tmp_path))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "missing" in done.stderr and "vae/easyomnimatte_toy_vae.safetensors" in done.stderr
    assert "omnimatte/easyomnimatte_toy_effect.safetensors" in done.stderr


def test_assembling_refuses_experts_of_another_remover_and_leaves_nothing(tmp_path):
    from training import assemble_world

    out = tmp_path / "world"
    with pytest.raises(SystemExit, match="trained on another remover"):
        assemble_world.main(["--out", str(out), "--from", str(SHIPPED), "--remover", str(OTHER_REMOVER)])
    assert not out.exists()
    with pytest.raises(SystemExit, match="missing text: .*; vae: "):
        assemble_world.main(["--out", str(out), "--from", str(tmp_path), "--remover", str(OTHER_REMOVER)])


def _round_trip_psnr(vae, clip) -> float:
    from benchmarks.toy_table import vae_round_trip_psnr

    return vae_round_trip_psnr(vae, [clip])


def test_the_named_world_is_the_one_measured(tmp_path, pack):
    """The shipped world with another VAE swapped in: the table's hashes name that VAE, and its round-trip
    PSNR is that VAE's (loaded here as VAELoader does), not the shipped VAE's."""
    import comfy.sd
    import comfy.utils

    from benchmarks import second_world
    from omnimatte_eval import toy_eval
    from training import assemble_world

    world = tmp_path / "world"
    assemble_world.main(["--out", str(world), "--from", str(SHIPPED), "--vae", str(OTHER_VAE)])
    done = _toy_table(*QUICK, "--toy-world", str(world))
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    shipped = json.loads((SHIPPED / "manifest.json").read_text())["files"]
    written = json.loads((world / "manifest.json").read_text())["files"]
    assert result["toy_world"] == str(world)
    assert result["toy_world_sha256"] == {stage: entry["sha256"][:12] for stage, entry in written.items()}
    assert written["vae"]["sha256"][:12] == _sha12(OTHER_VAE) != shipped["vae"]["sha256"][:12]
    assert all(written[stage]["sha256"] == shipped[stage]["sha256"] for stage in ("text", "remover"))

    clip = second_world.held_out_clips(1)[0]
    sd, metadata = comfy.utils.load_torch_file(str(OTHER_VAE), return_metadata=True)
    with torch.inference_mode():
        other = _round_trip_psnr(comfy.sd.VAE(sd=sd, metadata=metadata), clip)
        shipped_vae = _round_trip_psnr(toy_eval.load_toy_models().vae, clip)
    measured = result["worlds"]["second"]["vae"]["round_trip_psnr"]
    assert abs(measured - other) <= 0.01 and abs(measured - shipped_vae) >= 1.0, (measured, other, shipped_vae)
