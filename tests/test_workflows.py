"""The ready-made workflows: offline validation against the host's node definitions, API copies in
step, end-to-end runs through the real server, and the headless runner."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import av
import pytest
from PIL import Image

from harness.data import short_clips
from omnimatte_workflows import workflow_format as wf
from omnimatte_host.comfy_host import PACK_DIR

ALL_WORKFLOWS = sorted((PACK_DIR / "workflows").glob("*.json"))
ALL_NAMES = [p.stem for p in ALL_WORKFLOWS]
TOY_DEMO = "toy_world_demo"  # the embedded toy world; tested in test_toy_world.py as well
VOID = "void_clean_plate_matte"  # core VOID (CogVideoX) → plate matte: validated offline only, its weights
# are not available here, so it is excluded from the end-to-end runs
SAM3 = ["sam3_first_frame_mask", "sam3_text_objects"]  # core SAM3 masks: validated offline only, for the same
# reason (its weights are not available here); SAM3 arrived in v0.33.0, so on older hosts validation skips
OFFLINE_ONLY = [VOID, *SAM3]
NAMES = [n for n in ALL_NAMES if n not in (TOY_DEMO, *OFFLINE_ONLY)]  # the pack-model workflows, run end to end
WORKFLOWS = [p for p in ALL_WORKFLOWS if p.stem in NAMES]
API_DIR = PACK_DIR / "tests" / "workflows_api"
FILE_INPUTS = {"unet_name", "clip_name", "vae_name", "effect_expert", "quality_expert", "embeds_name", "file",
               "ckpt_name", "image", "lora_name"}
CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
FRAMES, HEIGHT, WIDTH = 9, 384, 640  # the short cut of animator-draw
TINY_SETTINGS = {"OmnimatteConditioning": {"width": 112, "height": 64},
                 "OmnimatteVideoFrames": {"width": 112, "height": 64},
                 "BranchWanSampler": {"steps": 2}}
LAYER_FILES = {  # what Save Omnimatte Layers writes for each workflow: layer → (files, suffix)
    "decompose_layers": {"rgba": (FRAMES, ".png"), "alpha": (FRAMES, ".png"), "background": (1, ".mp4")},
    "remove_object": {"background": (1, ".mp4")},
    "replace_background": {"composite": (1, ".mp4")},
    "clean_plate_matte": {"rgba": (FRAMES, ".png"), "alpha": (FRAMES, ".png"), "background": (1, ".mp4")},
    "remove_object_14b": {"background": (1, ".mp4")},
    "clean_plate_matte_14b": {"rgba": (FRAMES, ".png"), "alpha": (FRAMES, ".png"), "background": (1, ".mp4")},
    # all objects together, then each of the two objects
    "decompose_objects": {"rgba": (3 * FRAMES, ".png"), "alpha": (3 * FRAMES, ".png"), "background": (3, ".mp4")},
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _definitions(ui: dict) -> dict:
    return {n["type"]: wf.node_definition(n["type"]) for n in ui["nodes"] if n["type"] not in wf.FRONTEND_ONLY}


def test_the_workflows_exist():
    assert NAMES == ["clean_plate_matte", "clean_plate_matte_14b", "decompose_layers", "decompose_objects",
                     "remove_object", "remove_object_14b", "replace_background"]
    assert ALL_NAMES == sorted(NAMES + [TOY_DEMO, *OFFLINE_ONLY])
    assert sorted(p.stem for p in API_DIR.glob("*.json")) == ALL_NAMES


@pytest.mark.parametrize("path", ALL_WORKFLOWS, ids=ALL_NAMES)
def test_workflow_fits_the_node_definitions(pack, path):
    import nodes

    ui = _load(path)
    if path.stem == VOID and "VOIDInpaintConditioning" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this host has no core VOID nodes (they arrived in ComfyUI v0.33.0)")
    if path.stem in SAM3 and "SAM3_VideoTrack" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this host has no core SAM3 nodes (they arrived in ComfyUI v0.33.0)")
    by_id = {n["id"]: n for n in ui["nodes"]}
    assert any(n["type"] in wf.NOTE_NODES for n in ui["nodes"]), "each workflow explains its inputs in a note"
    for node in ui["nodes"]:
        if node["type"] in wf.FRONTEND_ONLY:
            continue
        assert node["type"] in nodes.NODE_CLASS_MAPPINGS, f"unknown node type {node['type']}"
        _check_widgets(node, wf.node_definition(node["type"]))
    for link_id, origin, slot, target, target_slot, kind in ui["links"]:
        source_def = wf.node_definition(by_id[origin]["type"])
        assert source_def["output"][slot] == kind, f"link {link_id}: output type {source_def['output'][slot]} ≠ {kind}"
        entry = by_id[target]["inputs"][target_slot]
        assert entry["link"] == link_id
        kinds = {name: k for name, k, _ in wf.input_specs(wf.node_definition(by_id[target]["type"]))}
        expected = kinds[entry["name"]]
        assert expected == kind or "*" in (expected, kind), f"link {link_id}: {kind} into {entry['name']} ({expected})"


def _check_widgets(node: dict, spec: dict) -> None:
    slots = wf.widget_slots(spec)
    values = node["widgets_values"]
    assert len(values) == len(slots), f"{node['type']}: {len(values)} widget values for {len(slots)} widgets"
    for (name, kind, options), value in zip(slots, values):
        where = f"{node['type']}.{name}"
        if kind == "CONTROL":
            assert value in CONTROL_VALUES, where
        elif kind in ("INT", "FLOAT"):
            assert options.get("min", value) <= value <= options.get("max", value), f"{where}={value}"
        elif name in FILE_INPUTS:
            none_ok = name in ("effect_expert", "quality_expert") and value == "none"  # background-only
            assert isinstance(value, str) and (value.endswith((".safetensors", ".mp4", ".png")) or none_ok), \
                f"{where}={value}"
        elif wf.combo_options(kind, options) is not None:
            assert value in wf.combo_options(kind, options), f"{where}={value}"


def test_void_workflow_wiring_and_api_copy_in_step(pack):
    import nodes

    if "VOIDInpaintConditioning" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this host has no core VOID nodes (they arrived in ComfyUI v0.33.0)")
    path = PACK_DIR / "workflows" / f"{VOID}.json"
    ui = _load(path)
    api = wf.ui_to_api(ui, _definitions(ui))
    assert api == _load(API_DIR / path.name), "tests/workflows_api is stale: run python -m omnimatte_workflows.build_workflows"
    of_type = lambda t: [k for k, n in api.items() if n["class_type"] == t]  # noqa: E731
    (quad,) = of_type("VOIDQuadmaskPreprocess")
    assert api[api[quad]["inputs"]["mask"][0]]["class_type"] == "InvertMask"  # VOID: black = remove
    (length,) = of_type("PrimitiveInt")
    (void_cond,) = of_type("VOIDInpaintConditioning")
    trims = of_type("ImageFromBatch")
    assert api[void_cond]["inputs"]["length"] == [length, 0]
    assert len(trims) == 2 and all(api[t]["inputs"]["length"] == [length, 0] for t in trims)  # plate = clip frames
    (matte,) = of_type("AlphaFromCleanPlate")
    assert api[api[matte]["inputs"]["clean_plate"][0]]["class_type"] == "VAEDecode"
    assert {api[k]["inputs"]["unet_name"] for k in of_type("UNETLoader")} == {"void_pass1.safetensors"}
    assert not of_type("BranchWanSampler") and not of_type("LoadOmnimatteExperts")  # no pack model at all


@pytest.mark.parametrize("name", SAM3)
def test_sam3_workflow_wiring_and_api_copy_in_step(pack, name):
    import nodes

    if "SAM3_VideoTrack" not in nodes.NODE_CLASS_MAPPINGS:
        pytest.skip("this host has no core SAM3 nodes (they arrived in ComfyUI v0.33.0)")
    ui = _load(PACK_DIR / "workflows" / f"{name}.json")
    api = wf.ui_to_api(ui, _definitions(ui))
    assert api == _load(API_DIR / f"{name}.json"), "tests/workflows_api is stale: run python -m omnimatte_workflows.build_workflows"
    of_type = lambda t: [k for k, n in api.items() if n["class_type"] == t]  # noqa: E731
    (track,) = of_type("SAM3_VideoTrack")
    frames = api[track]["inputs"]["images"][0]
    assert api[frames]["class_type"] == "OmnimatteVideoFrames"  # tracked on the working-size frames
    assert api[api[track]["inputs"]["model"][0]]["inputs"]["ckpt_name"].startswith("sam3")
    picks = of_type("SAM3_TrackToMask")
    (cond,) = of_type("OmnimatteConditioning")
    assert api[cond]["inputs"]["video"][0] == frames
    if name == "sam3_text_objects":
        assert sorted(api[k]["inputs"]["object_indices"] for k in picks) == ["0", "1"]
        assert api[api[api[track]["inputs"]["conditioning"][0]]["inputs"]["clip"][0]]["class_type"] == \
            "CheckpointLoaderSimple"  # SAM3's own text encoder
        last = api[cond]["inputs"]["objects"][0]
        assert api[last]["class_type"] == "OmnimatteObject"
        assert api[api[last]["inputs"]["objects"][0]]["inputs"]["mask"][0] in picks
        (save,) = of_type("SaveOmnimatteLayers")
        assert api[save]["inputs"]["layers"] == [of_type("OmnimatteDecode")[0], 2]
    else:
        assert api[cond]["inputs"]["object_mask"] == [picks[0], 0] and "objects" not in api[cond]["inputs"]
        scale = api[api[api[track]["inputs"]["initial_mask"][0]]["inputs"]["image"][0]]
        assert (scale["class_type"], scale["inputs"]["width"], scale["inputs"]["height"]) == ("ImageScale", 832, 480)


def test_toy_demo_defaults_and_api_copy_in_step(pack):
    path = PACK_DIR / "workflows" / f"{TOY_DEMO}.json"
    ui = _load(path)
    api = wf.ui_to_api(ui, _definitions(ui))
    assert api == _load(API_DIR / path.name), "tests/workflows_api is stale: run python -m omnimatte_workflows.build_workflows"
    types = {n["class_type"] for n in api.values()}
    assert not types & {"CLIPLoader", "CLIPVisionLoader", "CLIPVisionEncode", "LoadVideo"}, "nothing to download"
    files = [v for n in api.values() for k, v in n["inputs"].items() if k in FILE_INPUTS - {"file"}]
    assert files and all(f.startswith("easyomnimatte_toy_") for f in files)
    cond = next(n["inputs"] for n in api.values() if n["class_type"] == "OmnimatteConditioning")
    assert (cond["width"], cond["height"]) == (128, 128) and isinstance(cond["keep_mask"], list)


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_defaults_models_and_api_copy_in_step(pack, path):
    ui = _load(path)
    api = wf.ui_to_api(ui, _definitions(ui))
    assert api == _load(API_DIR / path.name), "tests/workflows_api is stale: run python -m omnimatte_workflows.build_workflows"
    by_type = {}
    for node in api.values():
        by_type.setdefault(node["class_type"], []).append(node["inputs"])
    assert by_type["ModelSamplingSD3"][0]["shift"] == 5.0
    assert by_type["BranchWanSampler"][0]["tau"] == 0.5 and by_type["BranchWanSampler"][0]["cfg"] == 1.0
    assert (by_type["OmnimatteConditioning"][0]["width"], by_type["OmnimatteConditioning"][0]["height"]) == (832, 480)
    assert by_type["CLIPLoader"][0]["type"] == "wan" and by_type["CLIPVisionEncode"][0]["crop"] == "none"
    experts = by_type["LoadOmnimatteExperts"][0]
    casper_14b = path.stem.endswith("_14b")  # Wan2.1-Fun-14B-InP + the Casper LoRA; experts are for one base size
    no_experts = path.stem.startswith("clean_plate_matte") or casper_14b  # the remover alone
    assert (experts["effect_expert"] == "none") == no_experts and (experts["quality_expert"] == "none") == no_experts
    assert ("AlphaFromCleanPlate" in by_type) == path.stem.startswith("clean_plate_matte")  # then the plate matte
    assert ("LoraLoaderModelOnly" in by_type) == casper_14b
    if casper_14b:
        (lora,) = [n for n in api.values() if n["class_type"] == "LoraLoaderModelOnly"]
        (unet,) = [k for k, n in api.items() if n["class_type"] == "UNETLoader"]
        assert lora["inputs"]["model"] == [unet, 0] and lora["inputs"]["strength_model"] == 1.0
        assert by_type["UNETLoader"][0]["unet_name"] == "wan2.1_fun_14b_inp.safetensors"
    models = [m for n in ui["nodes"] for m in n.get("properties", {}).get("models", [])]
    assert {m["name"] for m in models} == {"umt5_xxl_fp8_e4m3fn_scaled.safetensors", "clip_vision_h.safetensors",
                                          "wan_2.1_vae.safetensors"}
    assert all(m["url"].startswith("https://huggingface.co/Comfy-Org/") for m in models)


def test_text_encoder_rule_replaces_every_text_encode(pack):
    api = _load(API_DIR / "decompose_layers.json")
    swapped = wf.use_cached_text_embeds(api, "x.safetensors")
    types = [n["class_type"] for n in swapped.values()]
    assert "CLIPLoader" not in types and "CLIPTextEncode" not in types
    assert types.count("OmnimatteLoadTextEmbeds") == [n["class_type"] for n in api.values()].count("CLIPTextEncode")
    assert set(swapped) == set(api) - {k for k, n in api.items() if n["class_type"] == "CLIPLoader"}


# -- end to end through the real server ----------------------------------------------------------

@pytest.mark.parametrize("name", ALL_NAMES)
def test_toy_flag_sets_every_working_size(pack, name):
    """``--toy`` on a user's clip: every width/height in the graph is the toy size. It used to set only the
    conditioning's, so the frames were decoded (and the plate matte made) at 832×480."""
    from omnimatte_workflows.toy_graph import TOY_SIZE
    from omnimatte_run.prompts import build_prompt, workflow_prompt
    from omnimatte_run.run_workflow import parse_args

    extra = ["--new-background", "bg.mp4"] if name == "replace_background" else []
    args = parse_args(["--workflow", name, "--video", "v.mp4", "--mask", "m.mp4", "--toy", *extra])
    titles = [t for t in ("Input video", "Object mask video", "New background video")
              if wf.nodes_titled(workflow_prompt(PACK_DIR / "workflows" / f"{name}.json"), t)]
    prompt = build_prompt(args, {t: f"{i}.mp4" for i, t in enumerate(titles)})
    sizes = {(key, node["class_type"], field): value for key, node in prompt.items()
             for field, value in node["inputs"].items() if field in ("width", "height")}
    assert sizes and all(v == TOY_SIZE for v in sizes.values()), sizes


@pytest.fixture(scope="module")
def server_inputs(comfy_server, tmp_path_factory):
    clips = short_clips(tmp_path_factory.mktemp("clips"))
    for path in clips.values():
        shutil.copy(path, comfy_server.base_dir / "input" / path.name)
    return {"Input video": clips["video"].name, "Object mask video": clips["mask"].name,
            "Object mask video 2": clips["mask"].name,  # decompose_objects: the plumbing, one mask twice
            "New background video": clips["new_background"].name}


def _tiny_prompt(name: str, tiny_files, expert_files, text_embeds_file, clip_vision_file, inputs) -> dict:
    prompt = wf.use_cached_text_embeds(_load(API_DIR / f"{name}.json"), text_embeds_file)
    models = {("UNETLoader", "unet_name"): tiny_files["i2v"].name, ("VAELoader", "vae_name"): tiny_files["vae"].name,
              ("LoraLoaderModelOnly", "lora_name"): tiny_files["lora"].name,
              ("CLIPVisionLoader", "clip_name"): clip_vision_file.name,
              ("LoadOmnimatteExperts", "effect_expert"): expert_files["effect"],
              ("LoadOmnimatteExperts", "quality_expert"): expert_files["quality"]}
    for node in prompt.values():
        for (node_type, field), value in models.items():
            if node["class_type"] == node_type and node["inputs"].get(field) != "none":  # 'none' is the design
                node["inputs"][field] = value
        node["inputs"].update(TINY_SETTINGS.get(node["class_type"], {}))
    for title, file_name in inputs.items():
        for key in wf.nodes_titled(prompt, title):
            prompt[key]["inputs"]["file"] = file_name
    return prompt


def _run_on_server(server, prompt: dict, timeout_s: float = 600) -> dict:
    status, body = server.post_json("/prompt", {"prompt": prompt, "client_id": "omnimatte-e2e"})
    assert status == 200, body
    prompt_id = body["prompt_id"]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        history = server.get_json(f"/history/{prompt_id}")
        if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
            entry = history[prompt_id]
            assert entry["status"]["status_str"] == "success", (entry["status"], server.log_tail())
            return entry["outputs"]
        time.sleep(0.5)
    raise AssertionError(f"prompt {prompt_id} did not finish within {timeout_s} s:\n{server.log_tail()}")


def _layer_files(server, outputs: dict) -> dict[str, list[Path]]:
    """Save Omnimatte Layers' ``omnimatte_layers`` listing → {layer: files on disk}."""
    found: dict[str, list[Path]] = {}
    for node_output in outputs.values():
        for item in node_output.get("omnimatte_layers", []):
            path = server.base_dir / item["type"] / item["subfolder"] / item["filename"]
            found.setdefault(item["layer"], []).append(path)
    return {layer: sorted(paths) for layer, paths in found.items()}


def _video_frames(path: Path) -> tuple[int, int, int]:
    with av.open(str(path)) as video:
        frames = [f for f in video.decode(video=0)]
    return len(frames), frames[0].height, frames[0].width


@pytest.mark.server
@pytest.mark.parametrize("name", NAMES)
def test_workflow_runs_end_to_end_on_the_server(comfy_server, server_inputs, tiny_files, expert_files,
                                                text_embeds_file, clip_vision_file, name):
    prompt = _tiny_prompt(name, tiny_files, expert_files, text_embeds_file, clip_vision_file, server_inputs)
    outputs = _run_on_server(comfy_server, prompt)
    files = _layer_files(comfy_server, outputs)
    assert {layer: len(paths) for layer, paths in files.items()} == \
        {layer: count for layer, (count, _) in LAYER_FILES[name].items()}
    for layer, paths in files.items():
        assert all(p.is_file() and p.suffix == LAYER_FILES[name][layer][1] for p in paths), paths
        if paths[0].suffix == ".mp4":
            assert _video_frames(paths[0]) == (FRAMES, HEIGHT, WIDTH), paths[0]
        else:
            with Image.open(paths[0]) as image:
                assert image.size == (WIDTH, HEIGHT) and image.mode == {"rgba": "RGBA", "alpha": "L"}[layer]


@pytest.mark.server
def test_malformed_prompt_gets_400_with_node_errors(comfy_server, server_inputs, tiny_files, expert_files,
                                                    text_embeds_file, clip_vision_file):
    prompt = _tiny_prompt("remove_object", tiny_files, expert_files, text_embeds_file, clip_vision_file,
                          server_inputs)
    sampler = next(k for k, n in prompt.items() if n["class_type"] == "BranchWanSampler")
    prompt[sampler]["inputs"]["tau"] = 1.5
    status, body = comfy_server.post_json("/prompt", {"prompt": prompt})
    assert status == 400
    errors = body["node_errors"][sampler]["errors"]
    assert errors[0]["type"] == "value_bigger_than_max" and errors[0]["extra_info"]["input_name"] == "tau"


# -- the headless runner ------------------------------------------------------------------------

def test_headless_runner_writes_every_layer(tmp_path, tiny_files, expert_files, text_embeds_file, clip_vision_file,
                                            comfy_dirs):
    clips = short_clips(tmp_path / "clips")
    models = comfy_dirs / "models"
    yaml_path = tmp_path / "extra_model_paths.yaml"
    yaml_path.write_text("tiny:\n" + "".join(f"  {k}: {models / k}\n" for k in
                                             ("diffusion_models", "vae", "omnimatte", "omnimatte_text_embeds"))
                         + f"  clip_vision: {clip_vision_file.parent}\n")
    out = tmp_path / "layers"
    cmd = [sys.executable, "-m", "omnimatte_run.run_workflow", "--video", str(clips["video"]), "--mask", str(clips["mask"]),
           "--out", str(out), "--extra-model-paths", str(yaml_path), "--unet", tiny_files["i2v"].name,
           "--vae", tiny_files["vae"].name, "--clip-vision", clip_vision_file.name,
           "--effect-expert", expert_files["effect"], "--quality-expert", expert_files["quality"],
           "--text-embeds", text_embeds_file, "--width", "112", "--height", "64", "--steps", "2", "--json"]
    done = subprocess.run(cmd, cwd=PACK_DIR, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout[done.stdout.index("{"):])
    written = sorted(result["files"])
    folder = "animator_draw-animator_draw_mask"
    assert all(f.startswith(folder + "/") for f in written)
    assert len([f for f in written if f.startswith(f"{folder}/rgba/")]) == FRAMES
    assert len([f for f in written if f.startswith(f"{folder}/alpha/")]) == FRAMES
    for f in written:
        assert (out / f).is_file()
    assert _video_frames(out / folder / "background" / "background.mp4") == (FRAMES, HEIGHT, WIDTH)
    missing = subprocess.run([sys.executable, "-m", "omnimatte_run.run_workflow", "--video", str(clips["video"]),
                              "--mask", str(clips["mask"]), "--out", str(tmp_path / "x")],
                             cwd=PACK_DIR, capture_output=True, text=True, timeout=300)
    assert missing.returncode == 2
    assert "missing model files" in missing.stderr and "models/omnimatte/easyomnimatte_effect.safetensors" in missing.stderr
