"""`training.ship_world`: an assembled toy world made shippable, each stage's file with the chain of runs that
made it (docs/toy_world.md); the result passes the checks the shipped toy world must pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from omnimatte_host.comfy_host import PACK_DIR
from training import assemble_world, ship_world

BUILDS = PACK_DIR / "toy_world_build"
W256 = BUILDS / "w256"


@pytest.fixture(scope="module")
def assembled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ship") / "assembled"
    assemble_world.main(["--out", str(out), "--from", str(BUILDS / "world_k3_8k"),
                         "--remover", str(W256 / "remover" / "easyomnimatte_toy_remover.safetensors"),
                         "--block-scores", str(W256 / "analyze" / "block_scores.json"),
                         "--effect", str(W256 / "effect_anneal_10k" / "effect_expert.safetensors"),
                         "--quality", str(W256 / "quality_anneal_10k" / "quality_expert.safetensors")])
    return out


def _ship(assembled: Path, out: Path, *runs: str) -> dict:
    ship_world.main(["--out", str(out), "--world", str(assembled), "--base", str(BUILDS / "world_k3_8k"),
                     "--demo-from", str(PACK_DIR / "toy_world"), "--runs", *runs])
    return json.loads((out / "manifest.json").read_text())


def test_each_stage_records_the_runs_that_made_it(assembled, tmp_path):
    manifest = _ship(assembled, tmp_path / "shipped", f"remover={W256 / 'remover'}",
                     f"effect={W256 / 'effect'},{W256 / 'effect_anneal_10k'}",
                     f"quality={W256 / 'quality'},{W256 / 'quality_anneal_10k'}")
    base = json.loads((BUILDS / "world_k3_8k" / "manifest.json").read_text())["files"]
    effect = manifest["files"]["effect"]
    assert [run["to_step"] for run in effect["runs"]] == [8000, 10000]
    assert "--anneal-steps 2000" in effect["command"] and effect["command"].startswith("python -m training.train")
    assert effect["env"] == {"OMNIMATTE_FP32_VAE": "1"}
    own = [json.loads(line)["seconds"] for line in (W256 / "effect_anneal_10k" / "loss.jsonl").open()]
    assert effect["wall_seconds"] == pytest.approx(sum(own), abs=0.2)  # the anneal's log holds both runs' steps
    assert effect["metrics"]["step"] == 10000
    assert effect["source"] == "toy_world_build/w256/effect_anneal_10k/effect_expert.safetensors"  # its last run's
    assert manifest["files"]["vae"]["command"] == base["vae"]["command"]  # unchanged stages keep their record
    total = 0
    for entry in manifest["files"].values():  # what tests/test_toy_world.py asks of the shipped manifest
        path = tmp_path / "shipped" / entry["file"]
        assert ship_world.sha256(path) == entry["sha256"]
        total += path.stat().st_size
    assert total == manifest["total_bytes"]
    for name in ("vae", "remover", "effect", "quality"):
        assert manifest["files"][name]["command"].startswith("python -m training.")
        assert manifest["files"][name]["metrics"]


def test_a_changed_stage_without_its_runs_is_refused(assembled, tmp_path):
    with pytest.raises(SystemExit, match="remover differs"):
        _ship(assembled, tmp_path / "no_runs", f"effect={W256 / 'effect'}")
    assert not (tmp_path / "no_runs").exists()
    with pytest.raises(SystemExit, match="holds no copy of"):  # the last run named wrote another expert
        _ship(assembled, tmp_path / "wrong_run", f"remover={W256 / 'remover'}", f"effect={W256 / 'effect'}")
    assert not (tmp_path / "wrong_run").exists()
    with pytest.raises(SystemExit, match="STAGE=RUN"):
        _ship(assembled, tmp_path / "bad", "effects=x")
    with pytest.raises(SystemExit, match="not a world written by training.assemble_world"):
        _ship(BUILDS / "world_k3_8k", tmp_path / "packaged", f"remover={W256 / 'remover'}")
