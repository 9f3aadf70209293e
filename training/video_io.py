"""Reading clips: video files with PyAV, or folders of frame images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def is_clip(path: Path) -> bool:
    return (path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES) or (path.is_dir() and bool(_frame_files(path)))


def _frame_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def clip_length(path: Path) -> int:
    """Frame count (decodes the stream when the container does not say)."""
    if path.is_dir():
        return len(_frame_files(path))
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        if stream.frames:
            return int(stream.frames)
        return sum(1 for _ in container.decode(stream))


def read_clip(path: Path, start: int, count: int, gray: bool = False) -> torch.Tensor:
    """Frames [start, start+count) as float [n ≤ count, H, W, C] in [0, 1] (C = 1 if ``gray``)."""
    if path.is_dir():
        from PIL import Image

        files = _frame_files(path)[start:start + count]
        arrays = [np.asarray(Image.open(f).convert("L" if gray else "RGB")) for f in files]
    else:
        import av

        arrays = []
        with av.open(str(path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i >= start + count:
                    break
                if i >= start:
                    arrays.append(frame.to_ndarray(format="gray" if gray else "rgb24"))
    if not arrays:
        raise ValueError(f"{path}: no frames from index {start}. The clip is empty or shorter than its "
                         "header says; re-encode it or remove it from the folder")
    out = torch.from_numpy(np.stack(arrays)).float() / 255.0
    return out[..., None] if out.ndim == 3 else out


def cover_resize(frames: torch.Tensor, height: int, width: int, offset: tuple[float, float] = (0.5, 0.5)) -> torch.Tensor:
    """[N, H, W, C] → [N, height, width, C]: scale to cover, then crop (``offset`` in [0, 1] per axis)."""
    n, h, w, c = frames.shape
    scale = max(height / h, width / w)
    nh, nw = max(height, round(h * scale)), max(width, round(w * scale))
    x = F.interpolate(frames.permute(0, 3, 1, 2), size=(nh, nw), mode="bilinear", align_corners=False,
                      antialias=True)
    top, left = round((nh - height) * offset[0]), round((nw - width) * offset[1])
    return x[:, :, top:top + height, left:left + width].permute(0, 2, 3, 1).clamp(0, 1).contiguous()
