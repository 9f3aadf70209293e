"""Review findings that must stay fixed (issue 24, item 7): no dead names, one PSNR, no committed run output,
the README's memory figure the one docs/performance.md measured."""

from __future__ import annotations

import re
import subprocess

from scripts.comfy_host import PACK_DIR


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
