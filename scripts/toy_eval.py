"""Decompose toy-world clips through the pack's nodes and measure them against ground truth.

Used by the quality tests and ``benchmarks.toy_table``. Every stage is the node a workflow
runs (stock loaders, OmnimatteConditioning, LoadOmnimatteExperts, BranchWanSampler,
OmnimatteDecode, RecoverForeground), called in-process under ``torch.inference_mode`` as the
executor calls them; the embedded toy files are found through the pack's registered folders.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from scripts.build_workflows import TOY_FILES, TOY_SIZE, TOY_STEPS

NONE = "none"


def call_node(node_type: str, **inputs):
    """Run one node class as the executor would: V3 ``execute`` or V1 ``FUNCTION`` → its outputs tuple."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[node_type]
    if hasattr(cls, "FUNCTION"):
        return getattr(cls(), cls.FUNCTION)(**inputs)
    return tuple(cls.execute(**inputs).result)


@dataclass
class ToyModels:
    model: object  # MODEL after ModelSamplingSD3 (shift 5)
    vae: object
    text: list  # CONDITIONING (the toy text embedding)


def load_toy_models() -> ToyModels:
    (unet,) = call_node("UNETLoader", unet_name=TOY_FILES["unet_name"], weight_dtype="default")
    (model,) = call_node("ModelSamplingSD3", model=unet, shift=5.0)
    (vae,) = call_node("VAELoader", vae_name=TOY_FILES["vae_name"])
    (text,) = call_node("OmnimatteLoadTextEmbeds", embeds_name=TOY_FILES["embeds_name"])
    return ToyModels(model, vae, text)


def decompose(models: ToyModels, clip, effect: str | None = TOY_FILES["effect_expert"],
              quality: str | None = TOY_FILES["quality_expert"], tau: float = 0.5, steps: int = TOY_STEPS,
              seed: int = 43) -> dict[str, torch.Tensor]:
    """A ToyClip → {"background" [N, H, W, 3], "alpha" [N, H, W], "foreground" [N, H, W, 3]}."""
    with torch.inference_mode():
        (experts,) = call_node("LoadOmnimatteExperts", effect_expert=effect or NONE, effect_strength=1.0,
                               quality_expert=quality or NONE, quality_strength=1.0)
        positive, negative, latent, _ = call_node(
            "OmnimatteConditioning", positive=models.text, negative=models.text, vae=models.vae, video=clip.video,
            object_mask=clip.object_mask, width=TOY_SIZE, height=TOY_SIZE, mask_threshold=0.5, dilation=-1,
            keep_mask=clip.keep_mask if bool(clip.keep_mask.any()) else None)
        background, alpha = call_node("BranchWanSampler", model=models.model, experts=experts, positive=positive,
                                      negative=negative, latent=latent, seed=seed, steps=steps, cfg=1.0,
                                      sampler_name="euler", scheduler="simple", tau=tau)
        bg, matte, _ = call_node("OmnimatteDecode", vae=models.vae, background=background, alpha=alpha)
        foreground, _ = call_node("RecoverForeground", video=clip.video, background=bg, alpha=matte, epsilon=1e-3)
    return {"background": bg.float().clone(), "alpha": matte.float().clone(), "foreground": foreground.float().clone()}


def measure(clip, layers: dict[str, torch.Tensor]) -> dict:
    """The toy table's metrics of one decomposition (omnimatte_core.metrics.layer_metrics)."""
    from omnimatte_core.metrics import layer_metrics

    return layer_metrics(clip.video, layers["background"], layers["alpha"], layers["foreground"], clip.gt_background,
                         clip.gt_alpha, clip.object_region, clip.shadow_only, clip.gt_alpha >= 0.1)


def mean_metrics(rows: list[dict]) -> dict:
    """Per-key mean over clips, skipping None (a clip without a shadow has no shadow MAE)."""
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows if r.get(key) is not None]
        out[key] = round(sum(values) / len(values), 4) if values else None
    return out


def clean_plate_layers(clip, plate: torch.Tensor) -> dict[str, torch.Tensor]:
    """The training-free path on a ToyClip: AlphaFromCleanPlate (defaults) + RecoverForeground on ``plate``."""
    from omnimatte_core.plate_matte import PlateMatteSettings

    d = PlateMatteSettings()
    with torch.inference_mode():
        (alpha,) = call_node("AlphaFromCleanPlate", video=clip.video, clean_plate=plate, object_mask=clip.object_mask,
                             effect_radius=d.effect_radius, noise_floor=d.noise_floor, edge_radius=d.edge_radius,
                             temporal_frames=d.temporal_frames)
        foreground, _ = call_node("RecoverForeground", video=clip.video, background=plate, alpha=alpha, epsilon=1e-3)
    return {"background": plate.float().clone(), "alpha": alpha.float().clone(), "foreground": foreground.float().clone()}


def decompose_objects(models: ToyModels, scene, pairs: str = "auto", steps: int = TOY_STEPS, seed: int = 43,
                      tau: float = 0.5) -> dict:
    """A TwoObjectScene (or any video + masks) through the several-object nodes.

    → {"layers": ObjectLayers, "plate" [N, H, W, 3], "alpha" (all objects) [N, H, W],
       "recomposite" [N, H, W, 3] (every layer over the plate, CompositeLayerStack)}.
    """
    with torch.inference_mode():
        objects = None
        for k, mask in enumerate(scene.masks):
            (objects,) = call_node("OmnimatteObject", mask=mask, name=f"object_{k}", objects=objects)
        (experts,) = call_node("LoadOmnimatteExperts", effect_expert=TOY_FILES["effect_expert"], effect_strength=1.0,
                               quality_expert=TOY_FILES["quality_expert"], quality_strength=1.0)
        positive, negative, latent, _ = call_node(
            "OmnimatteConditioning", positive=models.text, negative=models.text, vae=models.vae, video=scene.video,
            objects=objects, width=TOY_SIZE, height=TOY_SIZE, mask_threshold=0.5, dilation=-1)
        background, alpha = call_node("BranchWanSampler", model=models.model, experts=experts, positive=positive,
                                      negative=negative, latent=latent, seed=seed, steps=steps, cfg=1.0,
                                      sampler_name="euler", scheduler="simple", tau=tau, pairs=pairs)
        plate, matte, layers = call_node("OmnimatteDecode", vae=models.vae, background=background, alpha=alpha)
        (recomposite,) = call_node("CompositeLayerStack", video=scene.video, layers=layers, order="", epsilon=1e-3,
                                   alpha_gain=1.0)
    return {"layers": layers, "plate": plate.float().clone(), "alpha": matte.float().clone(),
            "recomposite": recomposite.float().clone()}


def measure_objects(scene, result: dict) -> dict:
    """Per object: alpha MAE on its body, its shadow, and the other object (leak); plate and re-composite PSNR."""
    from omnimatte_core.metrics import region_mae, region_psnr

    def rounded(value):
        return None if value is None else round(value, 4)

    alphas = result["layers"].alphas.float()
    row = {}
    for k in range(alphas.shape[0]):
        row[f"object_{k}_mae_object"] = rounded(region_mae(alphas[k], scene.gt_alphas[k], scene.object_region(k)))
        row[f"object_{k}_mae_shadow"] = rounded(region_mae(alphas[k], scene.gt_alphas[k], scene.shadow_region(k)))
        row[f"object_{k}_leak"] = rounded(region_mae(alphas[k], scene.gt_alphas[k], scene.other_region(k)))
    removed = (scene.gt_alphas >= 0.1).any(0)
    row["plate_psnr_region"] = rounded(region_psnr(result["plate"], scene.plate, removed))
    row["plate_psnr_outside"] = rounded(region_psnr(result["plate"], scene.plate, ~removed))
    row["recomposite_psnr"] = rounded(region_psnr(result["recomposite"], scene.video, ~scene.overlap))
    return row
