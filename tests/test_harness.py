"""The harness is real: ComfyUI's own loaders, sampler, VAE and server."""

from __future__ import annotations

import torch

from training import random_models as tm


def _i2v_conditioning(vae, frames: int = 5, height: int = 32, width: int = 48, clip: bool = True):
    """Image-to-video concat conditioning as WanImageToVideo builds it (start image + mask)."""
    import node_helpers

    gen = torch.Generator().manual_seed(7)
    video = torch.rand(frames, height, width, 3, generator=gen)
    concat_latent = vae.encode(video)
    mask = torch.zeros(1, 1, concat_latent.shape[2], concat_latent.shape[-2], concat_latent.shape[-1])
    mask[:, :, 1:] = 1.0
    values = {"concat_latent_image": concat_latent, "concat_mask": mask}
    if clip:
        values["clip_vision_output"] = tm.clip_vision_output(seed=11)
    positive = node_helpers.conditioning_set_values(tm.text_conditioning(seed=5), values)
    negative = node_helpers.conditioning_set_values(tm.text_conditioning(seed=6), values)
    latent = torch.zeros(1, 16, concat_latent.shape[2], height // 8, width // 8)
    return positive, negative, latent


def _sample(model, positive, negative, latent, seed: int, cfg: float = 1.0):
    import comfy.sample

    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps=3, cfg=cfg, sampler_name="euler", scheduler="simple",
                               positive=positive, negative=negative, latent_image=latent,
                               disable_pbar=True, seed=seed)


def test_tiny_models_are_detected_as_wan21(tiny_i2v, tiny_t2v):
    for patcher, in_dim, has_img in ((tiny_i2v, 36, True), (tiny_t2v, 36, False)):
        wan = patcher.model.diffusion_model
        assert type(wan).__name__ == "WanModel"
        assert wan.in_dim == in_dim and wan.dim == 128 and len(wan.blocks) == 4
        assert (wan.img_emb is not None) == has_img
        assert torch.isfinite(next(wan.parameters())).all()


def test_stock_sampler_on_tiny_i2v_is_finite_and_reproducible(tiny_i2v, tiny_vae):
    positive, negative, latent = _i2v_conditioning(tiny_vae)
    first = _sample(tiny_i2v, positive, negative, latent, seed=42, cfg=2.0)
    again = _sample(tiny_i2v, positive, negative, latent, seed=42, cfg=2.0)
    other = _sample(tiny_i2v, positive, negative, latent, seed=43, cfg=2.0)
    assert first.shape == latent.shape
    assert torch.isfinite(first).all()
    assert torch.equal(first, again)
    assert not torch.allclose(first, other)


def test_stock_sampler_on_tiny_t2v_inpainting_shape(tiny_t2v, tiny_vae):
    positive, negative, latent = _i2v_conditioning(tiny_vae, clip=False)
    out = _sample(tiny_t2v, positive, negative, latent, seed=1)
    assert out.shape == latent.shape and torch.isfinite(out).all()


def test_tiny_vae_round_trip_shapes_and_determinism(tiny_vae):
    gen = torch.Generator().manual_seed(3)
    clip = torch.rand(9, 32, 48, 3, generator=gen)  # 4n+1 frames
    latent = tiny_vae.encode(clip)
    assert latent.shape == (1, 16, 3, 4, 6)
    assert torch.isfinite(latent).all()
    assert torch.equal(latent, tiny_vae.encode(clip))
    decoded = tiny_vae.decode(latent)
    assert decoded.shape[-4:] == (9, 32, 48, 3)
    assert torch.isfinite(decoded).all()
    assert torch.equal(decoded, tiny_vae.decode(latent))
