"""Small line plots as PNG with PIL (no plotting library needed in the environment)."""

from __future__ import annotations

from pathlib import Path

COLOURS = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189))


def _ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * i / (count - 1) for i in range(count)]


def line_plot(path: str | Path, xs: list[float], series: dict[str, list[float | None]], title: str,
              xlabel: str, ylabel: str, marks: list[float] = (), size: tuple[int, int] = (640, 400)) -> Path:
    """One or more lines over shared ``xs``; ``marks`` draws vertical dashed lines at those x."""
    from PIL import Image, ImageDraw

    width, height = size
    left, right, top, bottom = 70, 20, 30, 50
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    values = [v for ys in series.values() for v in ys if v is not None]
    y_lo, y_hi = (min(values), max(values)) if values else (0.0, 1.0)
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5, y_hi + 0.5
    x_lo, x_hi = min(xs), max(xs) if len(xs) > 1 else min(xs) + 1
    px = lambda x: left + (x - x_lo) / (x_hi - x_lo or 1) * (width - left - right)  # noqa: E731
    py = lambda y: top + (y_hi - y) / (y_hi - y_lo) * (height - top - bottom)  # noqa: E731
    draw.rectangle((left, top, width - right, height - bottom), outline="black")
    for y in _ticks(y_lo, y_hi):
        draw.line((left - 4, py(y), left, py(y)), fill="black")
        draw.text((4, py(y) - 6), f"{y:.3g}", fill="black")
    for x in _ticks(x_lo, x_hi, min(len(xs), 6)):
        draw.line((px(x), height - bottom, px(x), height - bottom + 4), fill="black")
        draw.text((px(x) - 10, height - bottom + 6), f"{x:.3g}", fill="black")
    for x in marks:
        for y0 in range(top, height - bottom, 8):
            draw.line((px(x), y0, px(x), min(y0 + 4, height - bottom)), fill=(120, 120, 120))
    for i, (name, ys) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        points = [(px(x), py(y)) for x, y in zip(xs, ys) if y is not None]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for x, y in points:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), fill=colour)
        draw.text((width - right - 150, top + 6 + 14 * i), name, fill=colour)
    draw.text((left, 8), title, fill="black")
    draw.text((width // 2 - 40, height - 18), xlabel, fill="black")
    draw.text((4, top - 22), ylabel, fill="black")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


def stack_panels(panels: list[str | Path], path: str | Path) -> Path:
    """PNG panels one above the other on a white sheet (several plots that share a figure)."""
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in panels]
    sheet = Image.new("RGB", (max(i.width for i in images), sum(i.height for i in images)), "white")
    top = 0
    for image in images:
        sheet.paste(image, (0, top))
        top += image.height
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path
