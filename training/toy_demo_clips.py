"""The toy world's bundled demo clips (toy_world/demo/): the first held-out clips with a shadow and no
camera motion, one alone and one beside a kept object."""

from __future__ import annotations

from pathlib import Path

DEMO_FPS = 8.0
DEMO_SEARCH = 64  # held-out indices looked through for the demo clips


def demo_indices() -> dict[str, int]:
    """The first held-out clips with a shadow and no camera motion: one alone, one with a kept object."""
    from training.toy_data import held_out_stream

    stream, found = held_out_stream(), {}
    for index in range(DEMO_SEARCH):
        meta = stream.clip(index).meta
        if meta["shadow"] is None or meta["camera"] is not None:
            continue
        name = "toy_two_objects" if meta["keep"] is not None else "toy_shadow"
        found.setdefault(name, index)
        if len(found) == 2:
            break
    return found


def write_demo_clip(index: int, path: Path) -> None:
    from omnimatte_core.toy_clip import save_toy_clip

    from training.toy_data import as_toy_clip, held_out_stream

    clip = held_out_stream().clip(index)
    save_toy_clip(as_toy_clip(clip, DEMO_FPS, {**clip.meta, "held_out_index": index}), path)
