"""The shared real clips (../shared/data/clips) and short cuts of them for end-to-end tests."""

from __future__ import annotations

import os
from pathlib import Path

from scripts.clips import cut_clip
from scripts.comfy_host import PACK_DIR


def shared_clips() -> Path:
    """$OMNIMATTE_SHARED_DATA/clips, else ../shared/data/clips beside the checkout, else /work/shared/data/clips."""
    candidates = [os.environ.get("OMNIMATTE_SHARED_DATA"), PACK_DIR.parent / "shared" / "data", "/work/shared/data"]
    for candidate in filter(None, candidates):
        if (Path(candidate) / "clips").is_dir():
            return Path(candidate) / "clips"
    raise FileNotFoundError(f"no shared clips in {candidates}; set OMNIMATTE_SHARED_DATA to the data folder")


def short_clips(folder: Path, frames: int = 9) -> dict[str, Path]:
    """animator-draw's first ``frames`` frames (video + mask) and a shorter new background from boys-beach."""
    clips = shared_clips()
    return {
        "video": cut_clip(clips / "animator-draw" / "input_video.mp4", folder / "animator_draw.mp4", frames),
        "mask": cut_clip(clips / "animator-draw" / "mask_00.mp4", folder / "animator_draw_mask.mp4", frames),
        "new_background": cut_clip(clips / "boys-beach" / "input_video.mp4", folder / "beach.mp4", frames // 2),
    }
