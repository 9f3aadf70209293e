"""The embedded toy world's graph (toy_world/, docs/toy_world.md) and the constants its runs share."""

from __future__ import annotations

from omnimatte_workflows.ui_graph import UIGraph


TOY_FILES = {  # the embedded toy world (toy_world/, docs/toy_world.md)
    "unet_name": "easyomnimatte_toy_remover.safetensors", "vae_name": "easyomnimatte_toy_vae.safetensors",
    "embeds_name": "easyomnimatte_toy_text.safetensors", "effect_expert": "easyomnimatte_toy_effect.safetensors",
    "quality_expert": "easyomnimatte_toy_quality.safetensors"}
TOY_DEMO_CLIP = "toy_shadow.safetensors"
TOY_SIZE, TOY_STEPS = 128, 20
TOY_LAYERS = ("background", "alpha", "foreground", "rgba")
TOY_NOTE = """## The toy world: EasyOmnimatte in miniature, nothing to download

Runs on a CPU in seconds with the pack's embedded **toy** models (a 128×128 Casper-like remover,
a tiny Wan VAE and Effect/Quality experts, all trained on procedural clips by `training/`). The
clip is a held-out toy clip the models never saw; *Load Toy Clip* also gives its ground truth to
compare with. **Real footage needs the real models** (Casper, trained experts): see the
`decompose_layers` workflow and the README. The toy models on real footage only show the plumbing.
"""


def toy_world_demo() -> dict:
    """The decompose chain on the embedded toy world: same nodes as real runs, toy loaders and clip."""
    g = UIGraph()
    unet = g.add("UNETLoader", 0, 0, unet_name=TOY_FILES["unet_name"])
    model = g.add("ModelSamplingSD3", 1, 0, shift=5.0)
    g.link(unet, 0, model, "model")
    text = g.add("OmnimatteLoadTextEmbeds", 0, 1, title="Toy text embedding", embeds_name=TOY_FILES["embeds_name"])
    vae = g.add("VAELoader", 0, 2, vae_name=TOY_FILES["vae_name"])
    experts = g.add("LoadOmnimatteExperts", 0, 3, effect_expert=TOY_FILES["effect_expert"],
                    quality_expert=TOY_FILES["quality_expert"])
    clip = g.add("LoadOmnimatteToyClip", 0, 4.5, title="Toy clip", clip=TOY_DEMO_CLIP)
    cond = g.add("OmnimatteConditioning", 2, 1, width=TOY_SIZE, height=TOY_SIZE, mask_threshold=0.5)
    for name, source in (("positive", text), ("negative", text), ("vae", vae)):
        g.link(source, 0, cond, name)
    g.link(clip, "video", cond, "video")
    g.link(clip, "object_mask", cond, "object_mask")
    g.link(clip, "keep_mask", cond, "keep_mask")
    sampler = g.add("BranchWanSampler", 3, 0, seed=43, steps=TOY_STEPS, cfg=1.0, tau=0.5)
    g.link(model, 0, sampler, "model")
    g.link(experts, 0, sampler, "experts")
    for i, name in enumerate(("positive", "negative", "latent")):
        g.link(cond, i, sampler, name)
    decode = g.add("OmnimatteDecode", 4, 0)
    g.link(vae, 0, decode, "vae")
    g.link(sampler, 0, decode, "background")
    g.link(sampler, 1, decode, "alpha")
    recover = g.add("RecoverForeground", 5, 0)
    g.link(clip, "video", recover, "video")
    g.link(decode, 0, recover, "background")
    g.link(decode, 1, recover, "alpha")
    alpha = g.add("MaskToImage", 5, 2)
    g.link(decode, 1, alpha, "mask")
    sources = {"background": (decode, 0), "alpha": (alpha, 0), "foreground": (recover, "foreground"),
               "rgba": (recover, "rgba")}
    for row, layer in enumerate(TOY_LAYERS):
        save = g.add("SaveImage", 6, row * 1.5, title=f"Save {layer}", filename_prefix=f"omnimatte/{layer}/{layer}")
        g.link(sources[layer][0], sources[layer][1], save, "images")
    gt = g.add("MaskToImage", 1, 6)
    g.link(clip, "gt_alpha", gt, "mask")
    preview = g.add("PreviewImage", 2, 6, title="Ground-truth alpha (object + shadow)")
    g.link(gt, 0, preview, "images")
    g.add("MarkdownNote", 3, 4.5, text=TOY_NOTE)  # below the sampler's live preview
    return g.to_json()
