"""Decompose toy-world clips through the pack's nodes and measure them against ground truth.

Used by the quality tests and ``benchmarks.toy_table``. Every stage is the node a workflow
runs (stock loaders, OmnimatteConditioning, LoadOmnimatteExperts, BranchWanSampler,
OmnimatteDecode, RecoverForeground), called in-process under ``torch.inference_mode`` as the
executor calls them; the embedded toy files are found through the pack's registered folders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from omnimatte_workflows.toy_graph import TOY_FILES, TOY_SIZE, TOY_STEPS

NONE = "none"


def toy_world_files(folder: Path) -> dict[str, Path]:
    """The toy files of a folder laid out like the pack's ``toy_world/`` (manifest name → path); raises naming
    every file that is missing, so a half-assembled build never borrows the shipped files unnoticed."""
    from training.world_files import SHIPPED  # stage → (ComfyUI model folder, file name): the one layout

    files = {stage: folder / sub / name for stage, (sub, name) in SHIPPED.items()}
    missing = [str(path.relative_to(folder)) for path in files.values() if not path.is_file()]
    if missing:
        raise FileNotFoundError(f"toy world {folder}: missing {', '.join(missing)}; assemble it with "
                                "`python -m training.assemble_world` or package a build there")
    return files


def use_toy_world(folder: Path) -> None:
    """Make the stock loaders find ``folder``'s toy files ahead of the shipped ones (ComfyUI searches a model
    folder's paths in order), so an unshipped build is measured through exactly the shipped path."""
    import folder_paths

    for sub in sorted({path.parent.name for path in toy_world_files(folder).values()}):
        folder_paths.add_model_folder_path(sub, str(folder / sub), is_default=True)


def call_node(node_type: str, **inputs):
    """Run one node class as the executor would: V3 ``execute`` or V1 ``FUNCTION`` → its outputs tuple."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[node_type]
    if hasattr(cls, "FUNCTION"):
        return getattr(cls(), cls.FUNCTION)(**inputs)
    return tuple(cls.execute(**inputs).result)


@dataclass
class ToyModels:
    model: object  # MODEL after ModelSamplingSD3 (shift 5 unless asked)
    vae: object
    text: list  # CONDITIONING (the toy text embedding)


def load_toy_models(shift: float = 5.0) -> ToyModels:
    """The toy world's models as its workflow loads them (``shift``: ModelSamplingSD3's, the workflow's 5)."""
    (unet,) = call_node("UNETLoader", unet_name=TOY_FILES["unet_name"], weight_dtype="default")
    (model,) = call_node("ModelSamplingSD3", model=unet, shift=shift)
    (vae,) = call_node("VAELoader", vae_name=TOY_FILES["vae_name"])
    (text,) = call_node("OmnimatteLoadTextEmbeds", embeds_name=TOY_FILES["embeds_name"])
    return ToyModels(model, vae, text)


def decompose(models: ToyModels, clip, effect: str | None = TOY_FILES["effect_expert"],
              quality: str | None = TOY_FILES["quality_expert"], tau: float = 0.5, steps: int = TOY_STEPS,
              seed: int = 43, size: int = TOY_SIZE, window_frames: int | None = None,
              window_overlap: int | None = None) -> dict[str, torch.Tensor]:
    """A ToyClip → {"background" [N, H, W, 3], "alpha" [N, H, W], "foreground" [N, H, W, 3]}.

    ``window_frames`` / ``window_overlap``: the sampler's temporal windows (None: its defaults; 0: one window).
    """
    from omnimatte_core.windows import DEFAULT_OVERLAP_FRAMES, TRAINED_FRAMES

    windows = {"window_frames": TRAINED_FRAMES if window_frames is None else window_frames,
               "window_overlap": DEFAULT_OVERLAP_FRAMES if window_overlap is None else window_overlap}
    with torch.inference_mode():
        (experts,) = call_node("LoadOmnimatteExperts", effect_expert=effect or NONE, effect_strength=1.0,
                               quality_expert=quality or NONE, quality_strength=1.0)
        positive, negative, latent, _ = call_node(
            "OmnimatteConditioning", positive=models.text, negative=models.text, vae=models.vae, video=clip.video,
            object_mask=clip.object_mask, width=size, height=size, mask_threshold=0.5, dilation=-1,
            keep_mask=clip.keep_mask if bool(clip.keep_mask.any()) else None)
        background, alpha = call_node("BranchWanSampler", model=models.model, experts=experts, positive=positive,
                                      negative=negative, latent=latent, seed=seed, steps=steps, cfg=1.0,
                                      sampler_name="euler", scheduler="simple", tau=tau, **windows)
        bg, matte, _ = call_node("OmnimatteDecode", vae=models.vae, background=background, alpha=alpha)
        foreground, _ = call_node("RecoverForeground", video=clip.video, background=bg, alpha=matte, epsilon=1e-3)
    return {"background": bg.float().clone(), "alpha": matte.float().clone(), "foreground": foreground.float().clone()}


def measure(clip, layers: dict[str, torch.Tensor]) -> dict:
    """The toy table's metrics of one decomposition (omnimatte_core.metrics.layer_metrics): the layer over a new
    background against the ground-truth layer, alpha MAE per region, the plate, and the self-check."""
    from omnimatte_core.metrics import LAYER_ALPHA_MIN, layer_metrics

    return layer_metrics(clip.video, layers["background"], layers["alpha"], layers["foreground"], clip.gt_background,
                         clip.gt_alpha, clip.object_region, clip.shadow_only, clip.gt_alpha >= LAYER_ALPHA_MIN)


# Reference answers, measured exactly as methods are. Their plate is the ground-truth plate: a binary alpha's
# foreground (1 where the alpha is, unused where it is 0) does not depend on the plate, so the plate only decides
# the bg_psnr columns, which are not the reference's to score (reported as None).
REFERENCE_ROWS = ("ground_truth", "mask_as_alpha", "alpha_zero", "alpha_one")
SHADOW_MARGIN = 0.2  # a method's shadow MAE must be this far below the mask copy's (issue 22)
COMPOSITE_MARGIN_DB = 0.5  # and its new-background composite this far above each trivial answer's


def reference_layers(clip, kind: str) -> dict[str, torch.Tensor]:
    """One of REFERENCE_ROWS as layers: the alpha named by ``kind`` with the ground-truth plate, the foreground
    recovered from the video as RecoverForeground does (ε 1e-3)."""
    from omnimatte_core.layers import recover_foreground

    alphas = {"ground_truth": clip.gt_alpha, "mask_as_alpha": clip.object_mask,
              "alpha_zero": torch.zeros_like(clip.gt_alpha), "alpha_one": torch.ones_like(clip.gt_alpha)}
    alpha = alphas[kind].float()
    plate = clip.gt_background.float()
    return {"background": plate, "alpha": alpha, "foreground": recover_foreground(clip.video.float(), plate, alpha)}


def reference_row(clips, kind: str) -> dict:
    """The mean metrics of a reference answer over ``clips`` (its bg_psnr columns None: the plate is the truth)."""
    rows = [{**measure(c, reference_layers(c, kind)), "bg_psnr_region": None, "bg_psnr_outside": None}
            for c in clips]
    return mean_metrics(rows)


def vae_ceiling_layers(vae, clip) -> dict[str, torch.Tensor]:
    """The ground-truth alpha (as a grey video, as the alpha branch decodes it) and plate through the VAE's
    encode → decode round trip: the best any method decoded by this VAE can do."""
    from omnimatte_core.layers import alpha_from_decoded, recover_foreground

    def round_trip(frames: torch.Tensor) -> torch.Tensor:
        return vae.decode(vae.encode(frames)).reshape(frames.shape).float().clamp(0, 1)

    with torch.inference_mode():
        plate = round_trip(clip.gt_background.float())
        alpha = alpha_from_decoded(round_trip(clip.gt_alpha.float().unsqueeze(-1).expand(*clip.gt_alpha.shape, 3)))
        foreground = recover_foreground(clip.video.float(), plate, alpha)
    return {"background": plate.clone(), "alpha": alpha.clone(), "foreground": foreground.clone()}


def quality_bars(row: dict, references: dict[str, dict]) -> dict[str, bool]:
    """The quality tests' bars for a method's mean ``row`` against the trivial answers' rows (``reference_row``):
    shadow MAE at least SHADOW_MARGIN below the mask copy's, and a new-background composite at least
    COMPOSITE_MARGIN_DB above the mask copy's, α ≡ 1's and α ≡ 0's. A missing value fails its bar."""
    def below(key: str, other: str, margin: float) -> bool:
        ours, theirs = row.get(key), references[other].get(key)
        return ours is not None and theirs is not None and ours <= theirs - margin

    def above(key: str, other: str, margin: float) -> bool:
        ours, theirs = row.get(key), references[other].get(key)
        return ours is not None and theirs is not None and ours >= theirs + margin

    return {"shadow_beats_mask_as_alpha": below("alpha_mae_shadow", "mask_as_alpha", SHADOW_MARGIN),
            **{f"composite_beats_{name}": above("composite_psnr", name, COMPOSITE_MARGIN_DB)
               for name in ("mask_as_alpha", "alpha_one", "alpha_zero")}}


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
    from omnimatte_core.quantise import rounded

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


@dataclass
class PlainClip:
    """A video and one object mask, nothing else (benchmarks on made-up frames)."""

    video: torch.Tensor  # [N, H, W, 3]
    object_mask: torch.Tensor  # [N, H, W]

    @property
    def keep_mask(self) -> torch.Tensor:
        return torch.zeros_like(self.object_mask)


def window_starts(frames: int, window_frames: int, overlap_frames: int) -> list[int]:
    """The latent frame each window starts at, for a clip of ``frames`` video frames."""
    from omnimatte_core.frame_geometry import padded_length
    from omnimatte_core.windows import WindowPlan, latent_frames

    return WindowPlan.from_video_frames(window_frames, overlap_frames).starts(latent_frames(padded_length(frames)))


def latent_overlap_frames(frames: int, window_frames: int, overlap_frames: int) -> torch.Tensor:
    """bool [frames]: the video frames whose latent frame lies where two windows overlap."""
    from omnimatte_core.frame_geometry import padded_length
    from omnimatte_core.windows import WindowPlan, latent_frames

    plan = WindowPlan.from_video_frames(window_frames, overlap_frames)
    total = latent_frames(padded_length(frames))
    cover = torch.zeros(total, dtype=torch.int32)
    for start in window_starts(frames, window_frames, overlap_frames):
        cover[start:start + plan.length] += 1
    latent_of_frame = torch.tensor([0] + [(f + 3) // 4 for f in range(1, frames)])
    return cover[latent_of_frame] > 1


def frame_errors(clip, layers: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-frame mean |error| of the alpha and the background against the ground truth: [N] each."""
    return {"alpha": (layers["alpha"] - clip.gt_alpha).abs().mean(dim=(1, 2)),
            "background": (layers["background"] - clip.gt_background).abs().mean(dim=(1, 2, 3))}


def seam_summary(clips, windowed: list[dict], whole: list[dict], window_frames: int, overlap_frames: int) -> dict:
    """Mean over clips of overlap-frame error / other-frame error, windowed and as one window."""
    out = {}
    for name in ("alpha", "background"):
        for label, runs in (("windowed", windowed), ("one_window", whole)):
            ratios, means = [], []
            for clip, errors in zip(clips, runs):
                seam = latent_overlap_frames(clip.video.shape[0], window_frames, overlap_frames)
                ratios.append(float(errors[name][seam].mean() / errors[name][~seam].mean()))
                means.append(float(errors[name].mean()))
            out[f"{name}_{label}_seam_error_ratio"] = round(sum(ratios) / len(ratios), 4)
            out[f"{name}_{label}_mean_error"] = round(sum(means) / len(means), 4)
    out["seam_error_ratio"] = max(out["alpha_windowed_seam_error_ratio"], out["background_windowed_seam_error_ratio"])
    return out


def plot_seams(clips, curves: dict[int, list[dict]], whole: list[dict], window_frames: int, path,
               marked_overlap: int) -> None:
    """Per-frame alpha error of each clip, one window vs windows per overlap; dashed lines where each
    window starts with ``marked_overlap``. One panel per clip, stacked."""
    import tempfile
    from pathlib import Path

    from training.plotting import line_plot, stack_panels

    panels = []
    with tempfile.TemporaryDirectory() as tmp:
        for row, clip in enumerate(clips):
            frames = clip.video.shape[0]
            series = {"one window": whole[row]["alpha"].tolist()}
            for overlap, runs in curves.items():
                series[f"windows of {window_frames}, overlap {overlap}"] = runs[row]["alpha"].tolist()
            edges = [4 * start - 3.5 for start in window_starts(frames, window_frames, marked_overlap)[1:]]
            panel = line_plot(Path(tmp) / f"{row}.png", list(range(frames)), series,
                              f"held-out toy clip, {frames} frames: alpha error per frame (dashed: a window "
                              f"starts, overlap {marked_overlap})", "frame", "alpha MAE", marks=edges, size=(760, 300))
            panels.append(panel)
        stack_panels(panels, path)
