"""training.toy_vae_widen: a trained toy VAE widened to more channels decodes exactly as before,
and training can grow the new channels (they are read through zeros, not frozen)."""

from __future__ import annotations

import pytest
import torch


def _wan_vae(dim: int, seed: int):
    """The toy VAE at ``dim`` with every weight random, residual branches and attention included."""
    from training.toy_vae import build_vae
    from training.toy_vae_init import _fill_random_

    model = build_vae("random", dim, seed)  # its residual branches start at zero: fill them too
    _fill_random_(model, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        for name, p in model.named_parameters():  # gains and biases away from 1 and 0: the copy must place them
            if name.endswith("gamma") or p.ndim == 1:
                p.add_(0.3 * torch.randn(p.shape, generator=torch.Generator().manual_seed(len(name))))
    return model


@pytest.fixture(scope="module")
def narrow_and_wide(pack):
    from training.toy_vae_widen import widen_state

    narrow = _wan_vae(4, seed=1)
    wide = _wan_vae(8, seed=2)
    state = widen_state(narrow.state_dict(), {k: v.shape for k, v in wide.state_dict().items()})
    wide.load_state_dict(state)
    clip = torch.rand(1, 3, 9, 32, 32, generator=torch.Generator().manual_seed(3)) * 2 - 1
    return narrow, wide, clip


def _round_trip(model, clip):
    with torch.no_grad():
        return model.decode(model.encode(clip))


def test_widened_vae_decodes_as_the_narrow_one(narrow_and_wide):
    narrow, wide, clip = narrow_and_wide
    before, after = _round_trip(narrow, clip), _round_trip(wide, clip)
    assert before.shape == after.shape == clip.shape
    scale = float(before.abs().max())
    assert float((before - after).abs().max()) < 1e-3 * scale
    with torch.no_grad():
        assert float((narrow.encode(clip) - wide.encode(clip)).abs().max()) < 1e-3 * float(narrow.encode(clip).abs().max())


def _undo_gains_(state: dict, narrow: dict) -> None:
    for name, value in narrow.items():
        if name.endswith("gamma") and state[name].shape != value.shape:
            state[name][: value.shape[0]] = value  # the plain copy, no √(C_old / C_new)


def _undo_queries_(state: dict, narrow: dict) -> None:
    for name, value in narrow.items():
        if name.endswith("to_qkv.weight"):
            old = value.shape[1]
            state[name][:old] = state[name][:old] / 2 ** 0.5
            bias = name.replace("weight", "bias")
            state[bias][:old] = state[bias][:old] / 2 ** 0.5  # width 4 → 8: the queries' √2 taken out


@pytest.mark.parametrize("undo", [_undo_gains_, _undo_queries_], ids=["rms_gains", "attention_queries"])
def test_the_width_compensations_are_what_keeps_it(narrow_and_wide, undo):
    """Without either √C correction the wide net decodes otherwise: the check above can fail."""
    from training.toy_vae_widen import widen_state

    narrow, wide, clip = narrow_and_wide
    state = widen_state(narrow.state_dict(), {k: v.shape for k, v in wide.state_dict().items()})
    undo(state, narrow.state_dict())
    uncorrected = _wan_vae(8, seed=2)
    uncorrected.load_state_dict(state)
    before = _round_trip(narrow, clip)
    assert float((before - _round_trip(uncorrected, clip)).abs().max()) > 1e-2 * float(before.abs().max())


def test_new_channels_receive_gradients(narrow_and_wide):
    _, wide, clip = narrow_and_wide
    wide.zero_grad()
    (wide.decode(wide.encode(clip)) - clip).pow(2).mean().backward()
    head = wide.decoder.head[-1].weight  # [3, 8, 3, 3, 3]: its reads of channels 4–7 start at zero
    assert float(head.detach()[:, 4:].abs().max()) == 0.0
    assert float(head.grad[:, 4:].abs().max()) > 0.0
    wide.zero_grad()


def test_trainer_widens_a_file_and_refuses_a_wider_one(pack, tmp_path):
    from safetensors.torch import save_file

    from training import toy_vae

    path = tmp_path / "narrow.safetensors"
    save_file({k: v.contiguous() for k, v in _wan_vae(8, seed=4).state_dict().items()}, str(path))
    argv = ["--output", str(tmp_path / "run"), "--init", "random", "--widen-from", str(path),
            "--iterations", "1", "--pool", "2", "--threads", "1", "--val-clips", "1"]
    trainer = toy_vae.VaeTrainer(toy_vae.parser().parse_args(argv + ["--dim", "16"]))
    assert trainer.model.encoder.conv1.weight.shape[0] == 16 and trainer.settings()["widen_from"] == str(path)
    with pytest.raises(SystemExit, match="no wider than --dim"):
        toy_vae.VaeTrainer(toy_vae.parser().parse_args(argv + ["--dim", "4"]))
    with pytest.raises(SystemExit, match="not both"):
        toy_vae.main(argv + ["--dim", "16", "--init-from", str(path)])
