"""The picture on Omnimatte Object's help page: two objects, a layer each, on a held-out toy scene.

    source scripts/env.sh && "$OMNIMATTE_PY" -m omnimatte_eval.objects_sheet   # → web/docs/images/two_objects.png

Columns: input, each object's mask, each object's alpha with its ground truth, the clean plate and
its ground truth; rows are three frames of the first held-out two-object scene.
"""

from __future__ import annotations

import logging

from omnimatte_host import comfy_host

OUT = comfy_host.PACK_DIR / "web" / "docs" / "images" / "two_objects.png"  # the help page shows it
COLUMNS = ("input", "mask 0", "mask 1", "alpha 0", "truth 0", "alpha 1", "truth 1", "plate", "truth")
FRAMES = (0, 8, 16)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    comfy_host.import_comfy(threads=2)
    comfy_host.load_nodes_with_pack()
    from omnimatte_eval import toy_eval
    from omnimatte_eval.sheets import grey, labelled_sheet
    from training.toy_data import two_object_scenes

    scene = two_object_scenes(1)[0]
    result = toy_eval.decompose_objects(toy_eval.load_toy_models(), scene)
    alphas = result["layers"].alphas
    columns = (scene.video, grey(scene.masks[0]), grey(scene.masks[1]), grey(alphas[0]), grey(scene.gt_alphas[0]),
               grey(alphas[1]), grey(scene.gt_alphas[1]), result["plate"], scene.plate)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    labelled_sheet(columns, COLUMNS, FRAMES).save(OUT)
    print(OUT)


if __name__ == "__main__":
    main()
