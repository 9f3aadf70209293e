"""Expert files: round trip, and a clear error for every kind of bad file."""

from __future__ import annotations

import json
import pickle

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file


@pytest.fixture()
def expert(core):
    base = core.experts.BaseSignature(dim=128, num_layers=4, in_dim=36)
    e = core.experts.zero_lora_expert("effect", base, rank=8, blocks=[2, 3], seed=3, init_std=0.1)
    return core.experts.Expert(
        core.experts.ExpertInfo(**{**e.info.__dict__, "base_model_name": "tiny_wan_i2v.safetensors",
                                   "training": {"iterations": 10, "lr": 1e-3}}), e.lora)


def _rewrite(path, out, tensors=None, metadata=None):
    with safe_open(str(path), framework="pt") as f:
        md = dict(f.metadata())
        ts = {k: f.get_tensor(k) for k in f.keys()}
    if tensors:
        ts = tensors(ts)
    if metadata:
        md = metadata(md)
    save_file(ts, str(out), md)
    return out


def test_round_trip_keeps_everything(core, expert, tmp_path):
    path = core.expert_file.save_expert(expert, tmp_path / "effect.safetensors")
    loaded = core.expert_file.load_expert(path, strength=0.7)
    assert loaded.info == expert.info and loaded.info.training == {"iterations": 10, "lr": 1e-3}
    assert loaded.strength == 0.7 and loaded.scale == pytest.approx(expert.info.alpha / 8 * 0.7)
    assert loaded.lora.keys() == expert.lora.keys()
    for key, (down, up) in expert.lora.items():
        assert torch.equal(loaded.lora[key][0], down) and torch.equal(loaded.lora[key][1], up)
    with safe_open(str(path), framework="pt") as f:
        md = f.metadata()
        assert set(f.keys()) == {f"blocks.{b}.self_attn.{t}.lora_{x}.weight"
                                 for b in (2, 3) for t in "qkvo" for x in "AB"}
    assert md["role"] == "effect" and md["attention_mask"] == "B" and json.loads(md["blocks"]) == [2, 3]
    assert (md["base_dim"], md["base_num_layers"], md["base_in_dim"]) == ("128", "4", "36")


BAD_FILES = {
    "unknown version": (None, lambda md: {**md, "format_version": "99"}, "unknown expert format version"),
    "not an expert": (None, lambda md: {**md, "format": "something-else"}, "not an EasyOmnimatte expert"),
    "missing tensor": (lambda ts: {k: v for k, v in ts.items() if "blocks.3.self_attn.v.lora_B" not in k}, None,
                       "missing .*blocks.3.self_attn.v.lora_B"),
    "extra tensor": (lambda ts: {**ts, "blocks.0.self_attn.q.lora_A.weight": torch.zeros(8, 128)}, None,
                     "unexpected .*blocks.0.self_attn.q.lora_A"),
    "wrong shape": (lambda ts: {**ts, "blocks.2.self_attn.k.lora_A.weight": torch.zeros(8, 64)}, None,
                    r"block 2 'k' has LoRA shapes \(8, 64\)"),
    "nan": (lambda ts: {**ts, "blocks.2.self_attn.o.lora_B.weight": torch.full((128, 8), float("nan"))}, None,
            "block 2 'o' contains NaN or Inf"),
    "inf": (lambda ts: {**ts, "blocks.3.self_attn.q.lora_A.weight": torch.full((8, 128), float("inf"))}, None,
            "block 3 'q' contains NaN or Inf"),
    "block out of range": (None, lambda md: {**md, "blocks": "[2, 7]"}, r"blocks \[2, 7\]"),
    "bad metadata": (None, lambda md: {k: v for k, v in md.items() if k != "rank"}, "metadata is incomplete"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_expert_files_are_refused_with_name_problem_and_fix(core, expert, tmp_path, case):
    tensors, metadata, message = BAD_FILES[case]
    good = core.expert_file.save_expert(expert, tmp_path / "good.safetensors")
    bad = _rewrite(good, tmp_path / "bad_expert.safetensors", tensors, metadata)
    with pytest.raises(core.expert_file.ExpertFileError, match=message) as err:
        core.expert_file.load_expert(bad)
    text = str(err.value)
    assert text.startswith("bad_expert.safetensors: ")
    assert any(word in text.lower() for word in ("re-export", "update", "retrain", "pick"))


def test_pickled_files_are_never_unpickled(core, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for name in ("expert.pt", "expert.ckpt"):
        path = tmp_path / name
        path.write_bytes(pickle.dumps(Payload()))
        with pytest.raises(core.expert_file.ExpertFileError, match="pickled weights are never loaded"):
            core.expert_file.load_expert(path)
    disguised = tmp_path / "disguised.safetensors"
    disguised.write_bytes(pickle.dumps(Payload()))
    with pytest.raises(core.expert_file.ExpertFileError, match="not a readable .safetensors"):
        core.expert_file.load_expert(disguised)
    assert not marker.exists()


def test_loaded_expert_must_match_the_model(core, expert, tmp_path, tiny_i2v):
    path = core.expert_file.save_expert(expert, tmp_path / "e.safetensors")
    loaded = core.expert_file.load_expert(path)
    loaded.check_base(core.patching.base_signature(tiny_i2v))  # the tiny model it was made for
    other = core.experts.BaseSignature(dim=128, num_layers=6, in_dim=36)
    with pytest.raises(ValueError, match="6 blocks"):
        loaded.check_base(other)
