"""Omnimatte Select Layer and Composite Layer Stack's 'background' input in real graphs (in-process
PromptExecutor), on hand-made two-object layers whose right answers are known."""

from __future__ import annotations

import torch

from harness import executor

N, H, W = 3, 16, 24


def _layers(core):
    """Two objects, 0 in front overlapping 1, over a plate; the video is their composite."""
    g = torch.Generator().manual_seed(7)
    plate, fg = torch.rand(N, H, W, 3, generator=g), torch.rand(2, N, H, W, 3, generator=g)
    alphas = torch.zeros(2, N, H, W)
    alphas[0, :, 2:10, 2:10], alphas[1, :, 6:14, 8:20] = 0.8, 0.6
    behind = core.layers.composite(fg[1], alphas[1], plate)
    video = core.layers.composite(fg[0], alphas[0], behind)
    backgrounds = torch.stack((behind, core.layers.composite(fg[0], alphas[0], plate)))
    return video, core.objects.ObjectLayers(("dog", "cat"), backgrounds, alphas, plate)


def _run(runner, node_type: str, sources: dict, widgets: dict, outputs: list[str]):
    executor.sources.update(sources)
    graph = {f"s_{k}": {"class_type": "OmnimatteTestSource", "inputs": {"key": k}} for k in sources}
    graph["n"] = {"class_type": node_type, "inputs": {**{k: [f"s_{k}", 0] for k in sources}, **widgets}}
    for index, name in enumerate(outputs):
        graph[f"c_{name}"] = {"class_type": "OmnimatteTestCapture", "inputs": {"value": ["n", index], "key": name}}
    return runner.run(graph)


def test_select_layer_gives_one_objects_background_alpha_and_name(core, runner):
    _, layers = _layers(core)
    for key in ("1", "cat", " 1 "):
        result = _run(runner, "OmnimatteSelectLayer", {"layers": layers}, {"object": key},
                      ["background", "alpha", "name"])
        assert result.success, result.error_message()
        assert torch.equal(result.captured["background"], layers.backgrounds[1])
        assert torch.equal(result.captured["alpha"], layers.alphas[1]) and result.captured["name"] == "cat"
    result = _run(runner, "OmnimatteSelectLayer", {"layers": layers}, {"object": "bird"}, ["background"])
    assert not result.success
    assert "OmnimatteSelectLayer" in result.error_message() and "the layers hold dog, cat" in result.error_message()
    result = _run(runner, "OmnimatteSelectLayer", {"layers": layers}, {"object": "2"}, ["background"])
    assert not result.success and "object 2 does not exist" in result.error_message()


def test_layer_stack_goes_over_a_new_background_image_or_video(core, runner):
    video, layers = _layers(core)
    widgets = {"order": "", "epsilon": 1e-6, "alpha_gain": 1.0}
    result = _run(runner, "CompositeLayerStack", {"video": video, "layers": layers}, widgets, ["composite"])
    assert result.success, result.error_message()
    empty = (layers.alphas == 0).all(0)  # [N, H, W]: no object there
    assert (result.captured["composite"] - video).abs()[empty].max() < 1e-5  # the clean plate: the input back
    image = torch.rand(1, 2 * H, 3 * W, 4, generator=torch.Generator().manual_seed(8))  # RGBA, another size
    short_video = torch.rand(2, H, W, 3, generator=torch.Generator().manual_seed(9))  # shorter than the clip
    for background in (image, short_video):
        result = _run(runner, "CompositeLayerStack", {"video": video, "layers": layers, "background": background},
                      widgets, ["composite"])
        assert result.success, result.error_message()
        composite = result.captured["composite"]
        backdrop = core.layers.fit_background(background[..., :3], H, W, N)  # covered, cropped, looped
        assert composite.shape == video.shape
        assert torch.allclose(composite[empty], backdrop[empty], atol=1e-6)  # the new background where no object
        expected = core.objects.composite_stack(layers.foregrounds(video, 1e-6), layers.alphas, backdrop, [0, 1])
        assert torch.allclose(composite, expected, atol=1e-5)
        assert (composite - video).abs()[~empty].mean() < (backdrop - video).abs()[~empty].mean()  # objects kept
    assert torch.equal(backdrop[2], backdrop[0])  # the 2-frame video looped
