"""ComfyUI's own sampling with the patched clone: schedule, CFG, cleanliness, interrupts."""

from __future__ import annotations

import pytest
import torch

from training import random_models as tm


def _conditioning(clip: bool = True):
    import node_helpers

    gen = torch.Generator().manual_seed(21)
    values = {"concat_latent_image": torch.randn(1, 16, 2, 4, 6, generator=gen),
              "concat_mask": torch.ones(1, 4, 2, 32, 48)}
    if clip:
        values["clip_vision_output"] = tm.clip_vision_output(seed=22)
    positive = node_helpers.conditioning_set_values(tm.text_conditioning(23), values)
    negative = node_helpers.conditioning_set_values(tm.text_conditioning(24), values)
    return positive, negative


def _sample(model, seed=5, steps=4, cfg=1.0, callback=None, batch=2):
    import comfy.sample

    positive, negative = _conditioning()
    latent = torch.zeros(batch, 16, 2, 4, 6)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps=steps, cfg=cfg, sampler_name="euler", scheduler="simple",
                               positive=positive, negative=negative, latent_image=latent,
                               disable_pbar=True, seed=seed, callback=callback)


def _experts(core, model):
    base = core.patching.base_signature(model)
    effect = core.experts.zero_lora_expert("effect", base, rank=8, blocks=[2, 3], seed=1, init_std=0.5)
    quality = core.experts.zero_lora_expert("quality", base, rank=4, seed=2, init_std=0.5)
    return effect, quality


def _assert_untouched(model, key):
    """No wrapper, injection, extra model or attachment on the MODEL; after ComfyUI loads the
    base again (it keeps the last clone loaded until then), no swapped forward on its modules."""
    import comfy.patcher_extension as pe

    assert key not in model.wrappers.get(pe.WrappersMP.DIFFUSION_MODEL, {})
    assert key not in model.injections and key not in model.additional_models
    assert model.get_attachment(key) is None
    for block in model.model.diffusion_model.blocks:
        assert "forward" not in block.self_attn.__dict__
        assert "forward" not in block.self_attn.q.__dict__


@pytest.mark.parametrize("cfg", [1.0, 2.5])
def test_comfy_sampling_runs_on_pair_latent(core, tiny_i2v, cfg):
    effect, quality = _experts(core, tiny_i2v)
    patched = core.patching.apply_branch_experts(tiny_i2v, effect, quality, tau=0.5)
    out = _sample(patched, cfg=cfg)
    assert out.shape == (2, 16, 2, 4, 6) and torch.isfinite(out).all()
    runtime = core.patching.branch_runtime(patched)
    assert len(runtime.history) == 4  # one diffusion-model call per step: cond/uncond pairs batched together
    stock = _sample(tiny_i2v, cfg=cfg)
    assert torch.allclose(out[0], stock[0], atol=1e-4, rtol=1e-4), "background row left the frozen path"
    assert not torch.allclose(out[1], stock[1], atol=1e-3), "alpha row shows no expert"


def test_odd_batch_is_refused(core, tiny_i2v):
    effect, quality = _experts(core, tiny_i2v)
    patched = core.patching.apply_branch_experts(tiny_i2v, effect, quality)
    with pytest.raises(ValueError, match="pairs"):
        _sample(patched, batch=1)


def _shifted(model, shift: float):
    """ModelSamplingSD3, as a workflow sets it (σ over the steps depends on the shift)."""
    from comfy_extras.nodes_model_advanced import ModelSamplingSD3

    return ModelSamplingSD3().patch(model, shift)[0]


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0])
def test_schedule_picks_expert_at_every_step(core, tiny_i2v, tau):
    effect, quality = _experts(core, tiny_i2v)
    patched = core.patching.apply_branch_experts(_shifted(tiny_i2v, 1.0), effect, quality, tau=tau)
    _sample(patched, steps=6)
    history = core.patching.branch_runtime(patched).history
    assert len(history) == 6
    sigmas = [s for s, _ in history]
    assert sigmas == sorted(sigmas, reverse=True) and sigmas[0] > 0.5 > sigmas[-1]
    for sigma, role in history:
        assert role == ("effect" if sigma > tau else "quality"), (sigma, role, tau)
    if tau == 0.5:
        assert {r for _, r in history} == {"effect", "quality"}
    if tau == 1.0:
        assert {r for _, r in history} == {"quality"}
    if tau == 0.0:
        assert {r for _, r in history} == {"effect"}


@pytest.mark.parametrize("only", ["effect", "quality"])
def test_single_expert_serves_every_step(core, tiny_i2v, only):
    effect, quality = _experts(core, tiny_i2v)
    patched = core.patching.apply_branch_experts(tiny_i2v, effect if only == "effect" else None,
                                                 quality if only == "quality" else None, tau=0.5)
    _sample(patched, steps=5)
    assert [r for _, r in core.patching.branch_runtime(patched).history] == [only] * 5


def test_schedule_maths(core):
    core_schedule = core.schedule  # pure maths on plain values
    s = core_schedule.ExpertSchedule("E", "Q", 0.5)
    assert [s.expert_at(x) for x in (1.0, 0.51, 0.5, 0.2, 0.0)] == ["E", "E", "Q", "Q", "Q"]
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="tau"):
            core_schedule.ExpertSchedule("E", "Q", bad)
    with pytest.raises(ValueError):
        core_schedule.ExpertSchedule(None, None, 0.5)


def test_original_model_unchanged_after_patched_and_interrupted_runs(core, tiny_i2v):
    import comfy.model_management as mm

    key = core.patching.PATCH_KEY
    before = _sample(tiny_i2v, seed=9)
    effect, quality = _experts(core, tiny_i2v)
    patched = core.patching.apply_branch_experts(tiny_i2v, effect, quality)
    _sample(patched, seed=9)
    assert torch.equal(_sample(tiny_i2v, seed=9), before)
    _assert_untouched(tiny_i2v, key)

    steps_seen = []

    def interrupt_at_second_step(step, x0, x, total):
        steps_seen.append(step)
        if step == 1:
            mm.interrupt_current_processing(True)
        mm.throw_exception_if_processing_interrupted()  # what ComfyUI's progress hook does

    with pytest.raises(mm.InterruptProcessingException):
        _sample(patched, seed=9, callback=interrupt_at_second_step)
    assert steps_seen == [0, 1]
    assert torch.equal(_sample(tiny_i2v, seed=9), before)
    _assert_untouched(tiny_i2v, key)
    assert torch.isfinite(_sample(patched, seed=9)).all()  # the patched clone still works afterwards


def test_context_windows_model_is_refused(core, tiny_i2v):
    import comfy.context_windows as cw

    model = tiny_i2v.clone()
    model.model_options["context_handler"] = object.__new__(cw.IndexListContextHandler)
    effect, quality = _experts(core, tiny_i2v)
    with pytest.raises(ValueError, match="context windows"):
        core.patching.apply_branch_experts(model, effect, quality)


def test_expert_for_another_model_size_is_refused(core, tiny_i2v):
    base = core.experts.BaseSignature(dim=256, num_layers=4, in_dim=36)
    wrong = core.experts.zero_lora_expert("effect", base, rank=4, blocks=[3])
    with pytest.raises(ValueError, match="dim 256"):
        core.patching.apply_branch_experts(tiny_i2v, wrong, None)


def test_non_wan_model_is_refused(core, tiny_vae):
    with pytest.raises(ValueError, match="not a Wan 2.1"):
        core.patching.base_signature(tiny_vae.patcher)
