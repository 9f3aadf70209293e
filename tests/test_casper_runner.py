"""The runner with the Casper files (issue 23): ``--lora NAME[:STRENGTH]`` and the model-file check that
refuses a wrong file before sampling, naming the file and the fix."""

from __future__ import annotations

import argparse

import av
import pytest

from harness import casper_layouts as cl
from omnimatte_run import model_check
from omnimatte_eval.clips import cut_clip, shared_clips
from test_runner_inputs import run_py

SMALL_1_3B = cl.CASPER_1_3B.reduced(1, dim=128, ffn_dim=256)  # widths shrunk: what is checked is keys and dims
SMALL_14B = cl.FUN_14B.reduced(1, dim=256, ffn_dim=512)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, pack):
    """A models folder with the right and the wrong files, registered as ComfyUI's (and as a yaml for the runner)."""
    import folder_paths

    root = tmp_path_factory.mktemp("casper_models")
    (root / "diffusion_models").mkdir()
    (root / "loras").mkdir()
    cl.write_wan(root / "diffusion_models" / "runner_casper_1.3b.safetensors", SMALL_1_3B)
    cl.write_wan(root / "diffusion_models" / "runner_wan2.1_fun_14b_inp.safetensors", SMALL_14B)
    cl.write_wan(root / "diffusion_models" / "runner_wan2.1_t2v_1.3b.safetensors",
                 cl.T2V_1_3B.reduced(1, dim=128, ffn_dim=256))
    cl.write_lora(root / "loras" / "runner_casper_14b_lora.safetensors", SMALL_14B, rank=16)
    cl.write_lora(root / "diffusion_models" / "runner_casper_14b_lora.safetensors", SMALL_14B, rank=16)
    for folder in ("diffusion_models", "loras"):
        folder_paths.add_model_folder_path(folder, str(root / folder))
    yaml = root / "extra_model_paths.yaml"
    yaml.write_text(f"casper_tests:\n  diffusion_models: {root / 'diffusion_models'}\n  loras: {root / 'loras'}\n")
    return root


def _prompt(unet: str, loras: list[tuple[str, float]]) -> dict:
    from omnimatte_run.prompts import WORKFLOWS_DIR, workflow_prompt

    prompt = workflow_prompt(WORKFLOWS_DIR / "remove_object.json")
    for node in prompt.values():
        if node["class_type"] == "UNETLoader":
            node["inputs"]["unet_name"] = unet
    return model_check.add_loras(prompt, loras)


@pytest.mark.parametrize("text, expected", [("casper_lora.safetensors", ("casper_lora.safetensors", 1.0)),
                                            ("casper_lora.safetensors:0.75", ("casper_lora.safetensors", 0.75)),
                                            ("sub/dir:odd.safetensors", ("sub/dir:odd.safetensors", 1.0))])
def test_lora_flag_takes_a_name_and_an_optional_strength(text, expected):
    assert model_check.lora_arg(text) == expected
    with pytest.raises(argparse.ArgumentTypeError):
        model_check.lora_arg("")


def test_loras_are_chained_after_the_unet_and_the_graph_validates(runner, model_dir):
    lora = "runner_casper_14b_lora.safetensors"
    prompt = _prompt("runner_wan2.1_fun_14b_inp.safetensors", [(lora, 1.0), (lora, 0.5)])
    unet = next(k for k, n in prompt.items() if n["class_type"] == "UNETLoader")
    loras = [(k, n) for k, n in prompt.items() if n["class_type"] == "LoraLoaderModelOnly"]
    assert [n["inputs"]["strength_model"] for _, n in loras] == [1.0, 0.5]
    assert loras[0][1]["inputs"]["model"] == [unet, 0] and loras[1][1]["inputs"]["model"] == [loras[0][0], 0]
    users = [n for n in prompt.values() if [unet, 0] in n["inputs"].values()]
    assert users == [loras[0][1]], "every other MODEL input must take the last LoRA's output"
    *_, node_errors = runner.validate(prompt)
    assert not node_errors.get(loras[0][0]) and not node_errors.get(loras[1][0]), node_errors
    assert model_check.check_model_files(prompt)[-1].startswith("runner_casper_14b_lora.safetensors: LoRA, 20 modules")


def test_lora_flag_replaces_the_14b_workflows_own_lora(pack):
    from omnimatte_run.prompts import WORKFLOWS_DIR, workflow_prompt

    prompt = workflow_prompt(WORKFLOWS_DIR / "clean_plate_matte_14b.json")
    assert [n["inputs"]["lora_name"] for n in prompt.values() if n["class_type"] == "LoraLoaderModelOnly"] == \
        ["casper_wan2.1_fun_14b_lora.safetensors"]
    model_check.add_loras(prompt, [("my_casper_lora.safetensors", 0.5)])
    (unet,) = [k for k, n in prompt.items() if n["class_type"] == "UNETLoader"]
    (lora_id, lora), = [(k, n) for k, n in prompt.items() if n["class_type"] == "LoraLoaderModelOnly"]
    assert lora["inputs"] == {"model": [unet, 0], "lora_name": "my_casper_lora.safetensors", "strength_model": 0.5}
    (shift,) = [n for n in prompt.values() if n["class_type"] == "ModelSamplingSD3"]
    assert shift["inputs"]["model"] == [lora_id, 0]


@pytest.mark.parametrize("unet, loras, expected", [
    ("runner_wan2.1_t2v_1.3b.safetensors", [],
     ["runner_wan2.1_t2v_1.3b.safetensors", "text-to-video", "in_dim 16", "Casper file"]),
    ("runner_casper_14b_lora.safetensors", [],
     ["runner_casper_14b_lora.safetensors: a LoRA", "--lora runner_casper_14b_lora.safetensors",
      "--unet the base model"]),
    ("runner_casper_1.3b.safetensors", [("runner_casper_14b_lora.safetensors", 1.0)],
     ["loras/runner_casper_14b_lora.safetensors: a LoRA for a dim-256 model",
      "runner_casper_1.3b.safetensors is dim 128", "drop --lora"]),
    ("runner_casper_1.3b.safetensors", [("missing.safetensors", 1.0)], ["--lora missing.safetensors: no such file"]),
], ids=["t2v_as_casper", "lora_as_unet", "14b_lora_on_1.3b", "missing_lora"])
def test_wrong_model_files_are_refused_naming_the_file_and_the_fix(model_dir, unet, loras, expected):
    with pytest.raises(model_check.mf.ModelFileError) as refused:
        model_check.check_model_files(_prompt(unet, loras))
    for text in expected:
        assert text in str(refused.value)


def test_runner_refuses_a_wrong_file_before_sampling(model_dir, tmp_path):
    clip = shared_clips() / "boys-beach"
    video = cut_clip(clip / "input_video.mp4", tmp_path / "input_video.mp4", 5)
    mask = cut_clip(clip / "mask_00.mp4", tmp_path / "mask_00.mp4", 5)
    done = run_py(["--video", str(video), "--mask", str(mask), "--out", str(tmp_path / "out"), "--workflow",
                   "remove_object", "--extra-model-paths", str(model_dir / "extra_model_paths.yaml"),
                   "--unet", "runner_casper_1.3b.safetensors", "--lora", "runner_casper_14b_lora.safetensors:0.8"])
    assert done.returncode == 2, done.stderr[-3000:]
    assert "runner_casper_14b_lora.safetensors: a LoRA for a dim-256 model" in done.stderr
    assert "Traceback" not in done.stderr
    log_text = (tmp_path / "out" / "omnimatte-run.log").read_text()
    assert "running " not in log_text, "a node ran before the refusal"


def test_runner_removes_an_object_with_the_14b_base_and_the_casper_lora(model_dir, tiny_files, text_embeds_file,
                                                                        clip_vision_file, comfy_dirs, tmp_path):
    """The 14B path end to end on reduced files in the published layouts: clean_plate_matte (no experts),
    the base through UNETLoader, the VideoX-Fun LoRA through LoraLoaderModelOnly, every LoRA key applied."""
    from PIL import Image

    clip = shared_clips() / "boys-beach"
    video = cut_clip(clip / "input_video.mp4", tmp_path / "input_video.mp4", 5)
    mask = cut_clip(clip / "mask_00.mp4", tmp_path / "mask_00.mp4", 5)
    yaml = tmp_path / "extra_model_paths.yaml"
    folders = {"diffusion_models": model_dir / "diffusion_models", "loras": model_dir / "loras",
               "vae": tiny_files["vae"].parent, "clip_vision": clip_vision_file.parent,
               "omnimatte_text_embeds": comfy_dirs / "models" / "omnimatte_text_embeds"}
    yaml.write_text("casper_e2e:\n" + "".join(f"  {k}: {v}\n" for k, v in folders.items()))
    out = tmp_path / "out"
    done = run_py(["--video", str(video), "--mask", str(mask), "--out", str(out), "--workflow", "clean_plate_matte",
                   "--extra-model-paths", str(yaml), "--unet", "runner_wan2.1_fun_14b_inp.safetensors",
                   "--lora", "runner_casper_14b_lora.safetensors", "--vae", tiny_files["vae"].name,
                   "--clip-vision", clip_vision_file.name, "--text-embeds", text_embeds_file,
                   "--width", "64", "--height", "48", "--steps", "1", "--threads", "2"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert "runner_casper_14b_lora.safetensors: LoRA, 20 modules, fits runner_wan2.1_fun_14b_inp" in done.stderr
    log_text = (out / "omnimatte-run.log").read_text()
    assert "lora key not loaded" not in log_text
    layers = out / "input_video-mask_00"
    alphas = sorted((layers / "alpha").glob("*.png"))
    assert len(alphas) == 5 and (layers / "background" / "background.mp4").is_file()
    with Image.open(alphas[0]) as first, av.open(str(video)) as source:
        stream = source.streams.video[0]
        assert first.size == (stream.width, stream.height)
