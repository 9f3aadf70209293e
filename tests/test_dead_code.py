"""Review findings that must stay fixed (issue 24, item 7): no dead names, one PSNR, no committed run output,
the README's memory figure the one docs/performance.md measured."""

from __future__ import annotations

import re
import subprocess

from omnimatte_host.comfy_host import PACK_DIR


def test_dead_names_and_the_second_psnr_are_gone(core):
    assert not hasattr(core.expert_file, "_KEY") and not hasattr(core.experts, "DEFAULT_RANK")
    assert not hasattr(core.layers, "psnr"), "one PSNR: omnimatte_core.metrics.region_psnr"


def test_no_run_output_is_committed():
    tracked = subprocess.run(["git", "ls-files", "omnimatte-out"], cwd=PACK_DIR, capture_output=True, text=True)
    assert tracked.returncode == 0 and tracked.stdout.strip() == "", tracked.stdout
    ignored = subprocess.run(["git", "check-ignore", "-q", "omnimatte-out/omnimatte-run.log"], cwd=PACK_DIR)
    assert ignored.returncode == 0, "omnimatte-out/ (the runner's default output) is not ignored"


def test_the_readme_quotes_the_measured_1080p_peak():
    table = (PACK_DIR / "docs" / "performance.md").read_text()
    measured = re.search(r"\| 1920×1080 \| 240 \| \*\*([\d,]+ MB)\*\*", table).group(1)
    assert f"240-frame clip peaks at {measured}" in (PACK_DIR / "README.md").read_text()


def test_one_8bit_quantiser_and_one_rounding_helper():
    """Files, previews and toy clips quantise through ``omnimatte_core.quantise`` alone (issue 24, item 7)."""
    pattern = re.compile(r"255\)?\s*\)?\.round\(|\.mul\(255(\.0)?\)|def rounded\(")
    found = [f"{path.relative_to(PACK_DIR)}:{n}"
             for folder in ("omnimatte_core", "nodes", "omnimatte_host", "omnimatte_workflows", "omnimatte_eval",
                            "omnimatte_run", "training", "benchmarks")
             for path in sorted((PACK_DIR / folder).rglob("*.py")) if path.name != "quantise.py"
             for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == [], f"a second 8-bit quantiser or rounding helper: {found}"


def test_the_quantiser_rounds_to_the_nearest_level(core):
    import torch

    x = torch.tensor([-0.2, 0.0, 0.4 / 255, 0.6 / 255, 0.5, 254.4 / 255, 1.0, 1.3])
    assert core.quantise.to_uint8(x).tolist() == [0, 0, 0, 1, 128, 254, 255, 255]
    assert torch.equal(core.quantise.round_to_8bit(x), core.quantise.to_uint8(x).float() / 255)
    assert core.quantise.to_uint16(torch.tensor([0.5, 2.0])).tolist() == [32768, 65535]
    assert core.quantise.rounded(None) is None and core.quantise.rounded(0.123456) == 0.1235
