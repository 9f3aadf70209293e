"""``python -m training.tiny --out DIR``: seeded tiny Wan 2.1 I2V + VAE + a cached text embedding.

For smoke runs of every training tool on a CPU (docs/training.md). The files load through
ComfyUI's own loaders like real ones; their weights are random.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from omnimatte_host import comfy_host

log = logging.getLogger("training.tiny")


def write_tiny_files(out: Path, layers: int = 4, seed: int = 1) -> dict[str, Path]:
    from omnimatte_core.text_embeds import save_conditioning
    from training import random_models as rm

    out.mkdir(parents=True, exist_ok=True)
    files = {"model": out / "tiny_wan_i2v.safetensors", "vae": out / "tiny_wan_vae.safetensors",
             "text": out / "tiny_text_embeds.safetensors"}
    rm.write_wan(files["model"], rm.TinyWanSpec(i2v=True, num_layers=layers), seed=seed)
    if not files["vae"].exists():
        rm.write_vae(files["vae"], seed=seed + 2)
    save_conditioning(rm.text_conditioning(seed + 3), files["text"])
    return files


def main(argv: list[str] | None = None) -> dict[str, Path]:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    p = argparse.ArgumentParser(prog="python -m training.tiny", description=__doc__)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    comfy_host.import_comfy()
    files = write_tiny_files(args.out, args.layers, args.seed)
    for key, path in files.items():
        log.info("%s: %s", key, path)
    return files


if __name__ == "__main__":
    main()
