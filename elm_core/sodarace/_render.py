"""Pictures and animations of a walker on its terrain: GIF, PNG and self-contained HTML (Pillow only).

All three share one view (`_view`): the bounding box of the whole trajectory, widened to take in the
terrain features near it (a wall, the tunnel mouth), fitted to the picture with y up. Terrain segments
are clipped to that view, so a ground 4000 units long never widens it. The path drawn is the joints'
centroid (the centre of mass when every joint weighs the same).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from elm_core.errors import ConfigError
from elm_core.sodarace._terrain import Segment, Terrain
from elm_core.sodarace._walker import MuscleKind, Walker

_SKY, _GROUND, _EDGE, _TEXT = "#f6f5f1", "#454a52", "#24272c", "#3a3d42"
_BONE, _MUSCLE, _JOINT, _TRAIL, _BAR = "#555a62", "#e4572e", "#1c1e22", "#2f7fc1", "#f0a35e"
_PAD_SIDE, _PAD_TOP, _PAD_BOTTOM = 0.05, 0.13, 0.16  # fractions of the picture left around the content
_SUPERSAMPLE = 2  # rasters are drawn this much larger, then downsampled: cheap antialiasing
_GIF_OPTIONS: dict[str, Any] = {
    "format": "GIF",
    "save_all": True,
    "loop": 0,
    "disposal": 1,
    "optimize": False,
}
_HTML_SIZE = (960, 360)

Size = tuple[int, int]


@dataclass(frozen=True)
class _View:
    """World -> pixel transform (y up) for a picture of `size` pixels, and pen sizes to match."""

    size: Size
    scale: float  # pixels per world unit
    x0: float  # world x at the picture's left edge
    y0: float  # world y at the picture's bottom edge

    def px(self, points: object) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.stack(
            [(p[..., 0] - self.x0) * self.scale, self.size[1] - (p[..., 1] - self.y0) * self.scale], -1
        )

    def box(self, pad_px: float) -> tuple[float, float, float, float]:
        w, h, pad = self.size[0] / self.scale, self.size[1] / self.scale, pad_px / self.scale
        return self.x0 - pad, self.y0 - pad, self.x0 + w + pad, self.y0 + h + pad

    @property
    def k(self) -> float:
        """Pixel density relative to a 360-pixel-high picture: sizes fonts and bounds pens."""
        return self.size[1] / 360

    @property
    def pen(self) -> float:
        return float(np.clip(0.12 * self.scale, 1.8 * self.k, 5 * self.k))

    @property
    def joint_r(self) -> float:
        return float(np.clip(0.22 * self.scale, 2.8 * self.k, 7 * self.k))


def _view(walker: Walker, trajectory: np.ndarray, terrain: Terrain, size: Size) -> _View:
    """The trajectory's bounding box and the terrain points near it (a wall's foot, a tunnel's mouth)."""
    points = trajectory.reshape(-1, 2)
    lo, hi = np.minimum(points.min(axis=0), [np.inf, 0.0]), points.max(axis=0)  # the ground always shows
    across = max(0.3 * float(np.max(hi - lo)), 1.25 * terrain.wall_gap)
    reach = np.array([across, max(across, 1.25 * terrain.tunnel_height)])
    ends = np.array(terrain.segments(walker.width / 2)).reshape(-1, 2)
    ends = ends[np.all(np.abs(ends - (lo + hi) / 2) <= (hi - lo) / 2 + reach, axis=1)]
    lo, hi = np.vstack([ends, [lo]]).min(axis=0), np.vstack([ends, [hi]]).max(axis=0)
    span, (w, h) = np.maximum(hi - lo, 1.0), size
    scale = float(min(w * (1 - 2 * _PAD_SIDE) / span[0], h * (1 - _PAD_TOP - _PAD_BOTTOM) / span[1]))
    x0 = float((lo[0] + hi[0]) / 2 - w / 2 / scale)  # centred across; spare height goes to the sky
    return _View(size, scale, x0, float(lo[1] - h * _PAD_BOTTOM / scale))


def _terrain(view: _View, terrain: Terrain, half_width: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Solid polygons (under the ground, over a ceiling, behind a wall) and surface lines, in pixels."""
    box = view.box(pad_px=20 * view.k)
    fills, edges = [], []
    for segment in terrain.segments(half_width):
        if (clipped := _clip(segment, box)) is None:
            continue
        (ax, ay), (bx, by) = clipped
        if ax == bx:  # a wall: solid on the side away from the walker's start
            far = box[0] if ax < 0 else box[2]
            fills.append(view.px([(ax, ay), (ax, by), (far, by), (far, ay)]))
        else:
            floor = box[1] if min(segment[0][1], segment[1][1]) <= 1e-9 else box[3]
            fills.append(view.px([(ax, ay), (bx, by), (bx, floor), (ax, floor)]))
        edges.append(view.px(clipped))
    return fills, edges


def _clip(segment: Segment, box: tuple[float, float, float, float]) -> Segment | None:
    """Liang-Barsky: the part of `segment` inside `box` (x0, y0, x1, y1), or None."""
    (ax, ay), (bx, by) = segment
    dx, dy, t0, t1 = bx - ax, by - ay, 0.0, 1.0
    for p, q in ((-dx, ax - box[0]), (dx, box[2] - ax), (-dy, ay - box[1]), (dy, box[3] - ay)):
        if p == 0 and q < 0:
            return None
        if p != 0:
            t0, t1 = (max(t0, q / p), t1) if p < 0 else (t0, min(t1, q / p))
    return None if t0 > t1 else ((ax + t0 * dx, ay + t0 * dy), (ax + t1 * dx, ay + t1 * dy))


def _checked(walker: Walker, trajectory: np.ndarray, frame_duration_ms: int = 1) -> np.ndarray:
    trajectory = np.asarray(trajectory, dtype=np.float64)
    if trajectory.ndim != 3 or trajectory.shape[1:] != (len(walker.joints), 2) or len(trajectory) == 0:
        raise ConfigError(f"trajectory must be (frames, {len(walker.joints)}, 2), got {trajectory.shape}")
    if not np.all(np.isfinite(trajectory)):
        raise ConfigError("trajectory has non-finite positions")
    if frame_duration_ms <= 0:
        raise ConfigError(f"frame_duration_ms must be > 0, got {frame_duration_ms}")
    return trajectory


def _mix(colour: str, strength: float) -> str:
    """`colour` faded towards the background: strength 1 is the colour itself, 0 the background."""
    pairs = zip(ImageColor.getrgb(colour), ImageColor.getrgb(_SKY), strict=True)
    return "#" + "".join(f"{round(s + (c - s) * strength):02x}" for c, s in pairs)


def _spring_colour(kind: MuscleKind) -> str:
    return _MUSCLE if kind is MuscleKind.MUSCLE else _BONE


def _moved(centroids: np.ndarray) -> str:
    return f"centroid moved {centroids[-1, 0] - centroids[0, 0]:+.2f}"


class _Canvas:
    """A supersampled Pillow picture on a pre-drawn background; `image()` hands it over downsampled."""

    def __init__(self, walker: Walker, trajectory: np.ndarray, terrain: Terrain, size: Size) -> None:
        self.walker, self.size, big = walker, size, (size[0] * _SUPERSAMPLE, size[1] * _SUPERSAMPLE)
        self.view = view = _view(walker, trajectory, terrain, big)
        self.font = ImageFont.load_default(size=round(15 * view.k))
        self.background = Image.new("RGB", view.size, _SKY)
        draw, (start_x, ground_y) = ImageDraw.Draw(self.background), view.px((0.0, 0.0))
        for y in np.arange(ground_y, 0, -8 * view.k):  # the start line, dashed
            draw.line([(start_x, y), (start_x, y - 4 * view.k)], _mix(_TEXT, 0.3), round(view.k))
        fills, edges = _terrain(view, terrain, walker.width / 2)
        for polygon in fills:
            draw.polygon([tuple(p) for p in polygon], fill=_GROUND)
        for edge in edges:
            draw.line([tuple(p) for p in edge], _EDGE, round(max(3 * view.k, 1.2 * view.pen)))
        self.picture = self.background.copy()
        self.draw = ImageDraw.Draw(self.picture)

    def pose(self, positions: np.ndarray, strength: float = 1.0) -> None:
        p, r, pen = self.view.px(positions), self.view.joint_r, round(self.view.pen)
        for m in sorted(self.walker.muscles, key=lambda m: m.kind is MuscleKind.MUSCLE):  # muscles on top
            self.draw.line([tuple(p[m.a]), tuple(p[m.b])], _mix(_spring_colour(m.kind), strength), pen)
        for x, y in p:
            self.draw.ellipse([x - r, y - r, x + r, y + r], fill=_mix(_JOINT, strength), outline=_SKY)

    def path(self, centroids: np.ndarray) -> None:
        p, k = [tuple(q) for q in self.view.px(centroids)], self.view.k
        if len(p) > 1:
            self.draw.line(p, fill=_TRAIL, width=round(1.5 * k), joint="curve")
        (x, y), r = p[-1], 2.5 * k
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=_TRAIL)

    def label(self, text: str, progress: float | None = None) -> None:
        (w, h), k = self.view.size, self.view.k
        x0, y0, x1, y1 = self.draw.textbbox((12 * k, 10 * k), text, font=self.font)
        self.draw.rounded_rectangle([x0 - 6 * k, y0 - 4 * k, x1 + 6 * k, y1 + 4 * k], 4 * k, fill=_SKY)
        self.draw.text((12 * k, 10 * k), text, fill=_TEXT, font=self.font)
        if progress is not None:
            self.draw.rectangle([0, h - 4 * k, w, h], fill=_mix(_GROUND, 0.9))
            self.draw.rectangle([0, h - 4 * k, w * progress, h], fill=_BAR)

    def keep(self) -> None:
        """Make what is drawn so far part of the background."""
        self.background = self.picture.copy()

    def image(self) -> Image.Image:
        """The picture so far at the requested size; drawing starts again from the background."""
        image = self.picture.resize(self.size, Image.Resampling.LANCZOS)
        self.picture.paste(self.background)
        return image


def render_png(
    walker: Walker, trajectory: np.ndarray, terrain: Terrain, path: str | Path, *, size: Size = (960, 360)
) -> Path:
    """A still: faded start and intermediate poses, the centroid's path, the final pose solid."""
    trajectory, path = _checked(walker, trajectory), Path(path)
    canvas = _Canvas(walker, trajectory, terrain, size)
    centroids, last = trajectory.mean(axis=1), len(trajectory) - 1
    for i in sorted({round(t) for t in np.linspace(0, last, 5)[1:-1]} - {0, last}):
        canvas.pose(trajectory[i], 0.14)
    canvas.pose(trajectory[0], 0.35)
    canvas.path(centroids)
    canvas.pose(trajectory[last])
    canvas.label(_moved(centroids))
    canvas.image().save(path, format="PNG", optimize=True)
    return path


def render_gif(
    walker: Walker,
    trajectory: np.ndarray,
    terrain: Terrain,
    path: str | Path,
    *,
    frame_duration_ms: int,
    size: Size = (640, 360),
) -> Path:
    """An animated GIF looping forever: one frame per trajectory frame, each distinct (a clock, a bar)."""
    trajectory, path = _checked(walker, trajectory, frame_duration_ms), Path(path)
    canvas, n = _Canvas(walker, trajectory, terrain, size), len(trajectory)
    canvas.pose(trajectory[0], 0.25)
    canvas.keep()
    decimals = 2 if frame_duration_ms % 10 == 0 else 3  # exact times, so no two frames look the same

    def frame(i: int) -> Image.Image:
        centroids = trajectory[: i + 1].mean(axis=1)
        canvas.path(centroids)
        canvas.pose(trajectory[i])
        canvas.label(f"t = {i * frame_duration_ms / 1000:.{decimals}f} s    {_moved(centroids)}", (i + 1) / n)
        return canvas.image()

    palette = frame(n - 1).quantize(colors=128, method=Image.Quantize.MEDIANCUT)  # the fullest frame
    frames = (frame(i).quantize(palette=palette, dither=Image.Dither.NONE) for i in range(n))
    next(frames).save(path, append_images=frames, duration=frame_duration_ms, **_GIF_OPTIONS)
    return path


def render_html(
    walker: Walker,
    trajectory: np.ndarray,
    terrain: Terrain,
    path: str | Path,
    *,
    frame_duration_ms: int,
    title: str = "",
) -> Path:
    """One self-contained HTML file: an inline SVG animated by a small script, with play/pause; no network."""
    trajectory, path = _checked(walker, trajectory, frame_duration_ms), Path(path)
    view, start = _view(walker, trajectory, terrain, _HTML_SIZE), np.round(trajectory[0], 3)
    (w, h), s = view.size, view.scale
    fills, edges = _terrain(view, terrain, walker.width / 2)
    ghost, springs = (
        "".join(_line(start[m.a], start[m.b], _mix(_spring_colour(m.kind), f)) for m in walker.muscles)
        for f in (0.35, 1.0)
    )
    frames = np.round(trajectory, 3).reshape(len(trajectory), -1).tolist()
    data = {"dt": frame_duration_ms, "springs": [[m.a, m.b] for m in walker.muscles], "frames": frames}
    page = _PAGE.format(
        title=html.escape(title or "Sodarace walker"),
        heading=f"<h1>{html.escape(title)}</h1>" if title else "",
        w=w, h=h, sky=_SKY, ground=_GROUND, edge=_EDGE, text=_TEXT, trail=_TRAIL, joint=_JOINT,
        start_line=_mix(_TEXT, 0.3),
        start=" ".join(f"{v:.1f}" for v in view.px((0.0, 0.0))),
        fills="".join(f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in p)}"/>' for p in fills),
        edges="".join(_line(a, b, decimals=1) for a, b in edges),
        wall=max(3, 1.2 * view.pen),
        matrix=f"{s:.6g} 0 0 {-s:.6g} {-view.x0 * s:.6g} {h + view.y0 * s:.6g}",
        pen=view.pen / s, unit=1 / s,
        ghost=ghost, springs=springs,
        joints="".join(f'<circle cx="{x:.3f}" cy="{y:.3f}" r="{view.joint_r / s:.4g}"/>' for x, y in start),
        last=len(trajectory) - 1,
        data=json.dumps(data, separators=(",", ":")),
        script=_SCRIPT,
    )  # fmt: skip
    path.write_text(page, encoding="utf-8")
    return path


def _line(a: np.ndarray, b: np.ndarray, colour: str = "", decimals: int = 3) -> str:
    x1, y1, x2, y2 = (f"{v:.{decimals}f}" for v in (*a, *b))
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}"' + (f' stroke="{colour}"/>' if colour else "/>")


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; padding: 16px; background: #eceae4; font: 14px system-ui, sans-serif; color: {text}; }}
main {{ max-width: 960px; margin: auto; }} h1 {{ font-size: 18px; font-weight: 600; }}
svg {{ width: 100%; height: auto; display: block; border-radius: 6px; box-shadow: 0 1px 4px #0002; }}
#clock {{ font: 15px system-ui, sans-serif; paint-order: stroke; }}
.controls {{ display: flex; gap: 12px; margin-top: 10px; }} .controls input {{ flex: 1; }}
</style></head>
<body><main>{heading}
<svg id="stage" viewBox="0 0 {w} {h}" role="img"><rect width="{w}" height="{h}" fill="{sky}"/>
<path d="M{start}V0" stroke="{start_line}" stroke-dasharray="4 4"/>
<g fill="{ground}">{fills}</g><g stroke="{edge}" stroke-width="{wall:.4g}">{edges}</g>
<g transform="matrix({matrix})" stroke-linecap="round" stroke-width="{pen:.4g}">
<g id="ghost">{ghost}</g>
<polyline id="trail" fill="none" stroke="{trail}" stroke-width="{unit:.4g}" stroke-opacity="0.9" points=""/>
<g id="springs">{springs}</g>
<g id="joints" fill="{joint}" stroke="{sky}" stroke-width="{unit:.4g}">{joints}</g></g>
<text id="clock" x="12" y="26" fill="{text}" stroke="{sky}" stroke-width="4">t = 0.00 s</text></svg>
<div class="controls"><button id="play" type="button">Pause</button>
<input id="scrub" type="range" min="0" max="{last}" value="0" aria-label="frame"></div>
</main>
<script id="walker-data" type="application/json">{data}</script>
<script>{script}</script>
</body></html>
"""

_SCRIPT = """
const d = JSON.parse(document.getElementById("walker-data").textContent), n = d.frames.length;
const $ = (id) => document.getElementById(id), lines = $("springs").children, dots = $("joints").children;
const set = (el, values) => Object.entries(values).forEach(([k, v]) => el.setAttribute(k, v));
const centre = d.frames.map((f) => {
  let x = 0, y = 0;
  for (let j = 0; j < f.length; j += 2) { x += f[j]; y += f[j + 1]; }
  return (2 * x / f.length).toFixed(3) + "," + (2 * y / f.length).toFixed(3);
});
let frame = 0, playing = true, last = null;
function show(i) {
  const f = d.frames[(frame = i)];
  const at = (j) => [f[2 * j], f[2 * j + 1]];
  d.springs.forEach(([a, b], k) => set(lines[k], { x1: at(a)[0], y1: at(a)[1], x2: at(b)[0], y2: at(b)[1] }));
  for (let j = 0; j < dots.length; j++) set(dots[j], { cx: at(j)[0], cy: at(j)[1] });
  $("trail").setAttribute("points", centre.slice(0, i + 1).join(" "));
  $("clock").textContent = "t = " + (i * d.dt / 1000).toFixed(2) + " s";
  $("scrub").value = i;
}
function tick(now) {
  const steps = playing && last !== null ? Math.floor((now - last) / d.dt) : 0;
  if (playing && last === null) last = now;
  if (steps > 0) { last += steps * d.dt; show((frame + steps) % n); }
  requestAnimationFrame(tick);
}
function play(on) { playing = on; last = null; $("play").textContent = on ? "Pause" : "Play"; }
$("play").onclick = () => play(!playing);
$("scrub").oninput = () => { play(false); show(Number($("scrub").value)); };
show(0);
requestAnimationFrame(tick);
"""
