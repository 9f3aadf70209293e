"""The picture on Alpha from Clean Plate's help page: what the matte catches, on a held-out toy clip.

    source scripts/env.sh && "$OMNIMATTE_PY" -m omnimatte_eval.plate_matte_sheet   # → web/docs/images/clean_plate_matte.png

Columns: input, the toy remover's plate, the object mask (as alpha it would miss the shadow), Alpha
from Clean Plate, the ground-truth alpha; rows are three frames of the first held-out clip with a shadow.
"""

from __future__ import annotations

import logging

import torch

from omnimatte_host import comfy_host

OUT = comfy_host.PACK_DIR / "web" / "docs" / "images" / "clean_plate_matte.png"  # the help page shows it
COLUMNS = ("input", "remover plate", "object mask", "Alpha from Clean Plate", "ground truth")
FRAMES = (0, 8, 16)


def sheet(clip, plate: torch.Tensor, matte: torch.Tensor):
    from omnimatte_eval.sheets import grey, labelled_sheet

    columns = (clip.video, plate, grey((clip.object_mask >= 0.5).float()), grey(matte), grey(clip.gt_alpha))
    return labelled_sheet(columns, COLUMNS, FRAMES)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    comfy_host.import_comfy(threads=2)
    comfy_host.load_nodes_with_pack()
    from omnimatte_eval import toy_eval
    from training.toy_data import as_toy_clip, held_out_clips

    clip = next(c for c in (as_toy_clip(c) for c in held_out_clips(6)) if bool(c.shadow_only.any()))
    plate = toy_eval.decompose(toy_eval.load_toy_models(), clip)["background"]
    matte = toy_eval.clean_plate_layers(clip, plate)["alpha"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    sheet(clip, plate, matte).save(OUT)
    print(OUT)


if __name__ == "__main__":
    main()
