"""The templates browser's thumbnails beside the workflows: one per workflow, current, and shipped.

The frontend (``comfyui_frontend_package``) shows a custom-node template with ``<name>.jpg`` from the folder
it is served from; ``test_frontend_templates.py`` opens them in the real page.
"""

from __future__ import annotations


import numpy as np
from PIL import Image

from harness import registry_archive
from omnimatte_workflows import registry_images
from omnimatte_workflows import workflow_thumbnails as thumbs
from omnimatte_host.comfy_host import PACK_DIR

WORKFLOWS = sorted((PACK_DIR / "workflows").glob("*.json"))
JPEG_TOLERANCE = 3.0  # mean |difference| in 8-bit levels between a stored JPEG and a fresh render of it


def _pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.float32)


def test_every_workflow_has_a_square_jpeg_thumbnail_and_nothing_else_does():
    assert len(WORKFLOWS) >= 10
    for path in WORKFLOWS:
        with Image.open(thumbs.thumbnail_path(path)) as image:
            assert image.format == "JPEG" and image.size == (thumbs.SIZE, thumbs.SIZE), path.name
    stray = {p.stem for p in (PACK_DIR / "workflows").glob("*.jpg")} - {p.stem for p in WORKFLOWS}
    assert not stray, f"thumbnails of no workflow: {stray}"


def test_thumbnails_are_what_the_generator_draws_from_the_workflows_now(tmp_path):
    """A workflow changed without ``python -m omnimatte_workflows.workflow_thumbnails`` fails here."""
    for path in WORKFLOWS:
        fresh = tmp_path / f"{path.stem}.jpg"
        thumbs.thumbnail(path).save(fresh, "JPEG", quality=thumbs.QUALITY)
        with Image.open(thumbs.thumbnail_path(path)) as stored, Image.open(fresh) as drawn:
            difference = np.abs(_pixels(stored) - _pixels(drawn)).mean()
        assert difference < JPEG_TOLERANCE, f"{path.stem}.jpg is stale ({difference:.1f}): run the generator"


def test_thumbnails_differ_and_graph_ones_name_their_workflow():
    images = {p.stem: _pixels(Image.open(thumbs.thumbnail_path(p))) for p in WORKFLOWS}
    names = sorted(images)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert np.abs(images[a] - images[b]).mean() > 1.0, f"{a} and {b} look the same"
    # the graph ones carry a caption band, the run one is frames; both differ from a blank square
    for name, pixels in images.items():
        assert pixels.std() > 10, name


def test_the_toy_demo_thumbnail_is_frames_of_its_real_run():
    """Input, plate, matte and composite of the toy demo's contact sheet (a real run), not a drawing."""
    assert set(thumbs.FROM_RUNS) == {"toy_world_demo"}
    parts = registry_images.tiles(Image.open(registry_images.SHEET).convert("RGB"))
    stored = _pixels(Image.open(PACK_DIR / "workflows" / "toy_world_demo.jpg"))
    zoom = thumbs.SIZE / registry_images.ICON_SIZE
    half = (registry_images.ICON_SIZE - registry_images.GAP) // 2  # the icon's 2×2 grid, scaled to the thumbnail
    side = int(half * zoom) - 2
    for index, part in enumerate(parts):  # input, plate / matte, composite
        x, y = (round((index % 2) * (half + registry_images.GAP) * zoom) + 1,
                round((index // 2) * (half + registry_images.GAP) * zoom) + 1)
        tile = _pixels(part.resize((side + 2, side + 2), Image.LANCZOS))[1:-1, 1:-1]
        window = stored[y:y + side, x:x + side]
        assert np.abs(window - tile).mean() < 6.0, f"tile {index} is not the run's frame"
    matte = _pixels(parts[2])
    assert matte.max() - matte.min() > 100, "the run's matte tile is blank: the sheet's layout moved"


def test_the_registry_archive_ships_every_thumbnail():
    shipped = registry_archive.archive_files(PACK_DIR)
    missing = [f"workflows/{p.stem}.jpg" for p in WORKFLOWS if f"workflows/{p.stem}.jpg" not in shipped]
    assert not missing, f"not in the registry archive (untracked, or .comfyignore drops them): {missing}"
