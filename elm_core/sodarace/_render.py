"""Pictures and animations of a walker on its terrain: GIF, PNG and self-contained HTML (Pillow only).

All three share one view (`_scene`): the bounding box of the whole trajectory, widened to take in
terrain features near it (a wall, the tunnel mouth), fitted to the picture with y up. Terrain
segments are clipped to that view, so a ground 4000 units long never widens it.
The path drawn is the joints' centroid (the centre of mass when every joint weighs the same).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont

from elm_core.errors import ConfigError
from elm_core.sodarace._terrain import Segment, Terrain
from elm_core.sodarace._walker import MuscleKind, Walker

_SKY, _GROUND, _EDGE, _TEXT = "#f6f5f1", "#454a52", "#24272c", "#3a3d42"
_BONE, _MUSCLE, _JOINT, _TRAIL, _BAR = "#555a62", "#e4572e", "#1c1e22", "#2f7fc1", "#f0a35e"
_PAD_SIDE, _PAD_TOP, _PAD_BOTTOM = 0.05, 0.13, 0.16  # fractions of the picture left around the content
_SUPERSAMPLE = 2  # rasters are drawn this much larger, then downsampled: cheap antialiasing
_HTML_SIZE = (960, 360)

Point = tuple[float, float]


@dataclass(frozen=True)
class _View:
    """World -> pixel transform (y up) for a picture of `size` pixels."""

    size: tuple[int, int]
    scale: float  # pixels per world unit
    x0: float  # world x at the picture's left edge
    y0: float  # world y at the picture's bottom edge

    def px(self, points: object) -> np.ndarray:
        p = np.asarray(points, dtype=np.float64)
        return np.stack(
            [(p[..., 0] - self.x0) * self.scale, self.size[1] - (p[..., 1] - self.y0) * self.scale], -1
        )

    def box(self, pad_px: float = 0.0) -> tuple[float, float, float, float]:
        pad = pad_px / self.scale
        return (
            self.x0 - pad,
            self.y0 - pad,
            self.x0 + self.size[0] / self.scale + pad,
            self.y0 + self.size[1] / self.scale + pad,
        )

    @property
    def density(self) -> float:
        """Pixel density relative to a 360-pixel-high picture: sizes pens and fonts."""
        return self.size[1] / 360


@dataclass(frozen=True)
class _Scene:
    view: _View
    fills: list[list[Point]]  # solid ground (below a surface) or rock (above a ceiling), pixels
    edges: list[tuple[Point, Point]]  # terrain surfaces and walls, pixels
    pen: float  # spring width in pixels
    joint_r: float  # joint radius in pixels


def _scene(walker: Walker, trajectory: np.ndarray, terrain: Terrain, size: tuple[int, int]) -> _Scene:
    segments = terrain.segments(walker.width / 2)
    points = trajectory.reshape(-1, 2)
    lo, hi = np.minimum(points.min(axis=0), [np.inf, 0.0]), points.max(axis=0)
    reach = max(0.3 * float(np.max(hi - lo)), 1.25 * terrain.wall_gap)
    near = [p for s in segments for p in s if np.all(lo - reach <= p) and np.all(np.asarray(p) <= hi + reach)]
    if near:
        lo, hi = np.minimum(lo, np.min(near, axis=0)), np.maximum(hi, np.max(near, axis=0))
    span = np.maximum(hi - lo, 1.0)
    w, h = size
    scale = float(min(w * (1 - 2 * _PAD_SIDE) / span[0], h * (1 - _PAD_TOP - _PAD_BOTTOM) / span[1]))
    view = _View(
        size, scale, float((lo[0] + hi[0]) / 2 - w / 2 / scale), float(lo[1] - h * _PAD_BOTTOM / scale)
    )
    fills, edges = _terrain_shapes(view, segments)
    k = view.density
    pen = float(np.clip(0.12 * scale, 1.8 * k, 5 * k))
    return _Scene(view, fills, edges, pen, float(np.clip(0.22 * scale, 2.8 * k, 7 * k)))


def _terrain_shapes(
    view: _View, segments: list[Segment]
) -> tuple[list[list[Point]], list[tuple[Point, Point]]]:
    box = view.box(pad_px=20 * view.density)
    fills, edges = [], []
    for segment in segments:
        clipped = _clip(segment, box)
        if clipped is None:
            continue
        (ax, ay), (bx, by) = clipped
        if ax != bx:  # solid below a surface touching the ground, above a ceiling
            floor = box[1] if min(segment[0][1], segment[1][1]) <= 1e-9 else box[3]
            polygon = view.px([(ax, ay), (bx, by), (bx, floor), (ax, floor)])
            fills.append([(float(x), float(y)) for x, y in polygon])
        a, b = view.px(clipped)
        edges.append(((float(a[0]), float(a[1])), (float(b[0]), float(b[1]))))
    return fills, edges


def _clip(segment: Segment, box: tuple[float, float, float, float]) -> Segment | None:
    """Liang-Barsky: the part of `segment` inside `box` (x0, y0, x1, y1), or None."""
    (ax, ay), (bx, by) = segment
    dx, dy = bx - ax, by - ay
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, ax - box[0]), (dx, box[2] - ax), (-dy, ay - box[1]), (dy, box[3] - ay)):
        if p == 0:
            if q < 0:
                return None
        elif p < 0:
            t0 = max(t0, q / p)
        else:
            t1 = min(t1, q / p)
    if t0 > t1:
        return None
    return (ax + t0 * dx, ay + t0 * dy), (ax + t1 * dx, ay + t1 * dy)


def _checked(walker: Walker, trajectory: np.ndarray) -> np.ndarray:
    trajectory = np.asarray(trajectory, dtype=np.float64)
    if trajectory.ndim != 3 or trajectory.shape[1:] != (len(walker.joints), 2) or len(trajectory) == 0:
        raise ConfigError(f"trajectory must be (frames, {len(walker.joints)}, 2), got {trajectory.shape}")
    if not np.all(np.isfinite(trajectory)):
        raise ConfigError("trajectory has non-finite positions")
    return trajectory


def _mix(colour: str, strength: float) -> tuple[int, int, int]:
    """`colour` faded towards the background: strength 1 is the colour itself, 0 the background."""
    c, s = ImageColor.getrgb(colour), ImageColor.getrgb(_SKY)
    return tuple(round(s[i] + (c[i] - s[i]) * strength) for i in range(3))  # type: ignore[return-value]


def _font(scene: _Scene, size: float) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=round(size * scene.view.density))


def _background(scene: _Scene) -> Image.Image:
    image = Image.new("RGB", scene.view.size, _SKY)
    draw = ImageDraw.Draw(image)
    k, (start_x, ground_y) = scene.view.density, scene.view.px((0.0, 0.0))
    for y in np.arange(ground_y, 0, -8 * k):  # the start line, dashed
        draw.line([(start_x, y), (start_x, y - 4 * k)], fill=_mix(_TEXT, 0.3), width=max(1, round(k)))
    for polygon in scene.fills:
        draw.polygon(polygon, fill=_GROUND)
    for a, b in scene.edges:
        draw.line([a, b], fill=_EDGE, width=round(max(3 * k, 1.2 * scene.pen)))
    return image


def _draw_pose(
    draw: ImageDraw.ImageDraw, scene: _Scene, walker: Walker, positions: np.ndarray, strength: float
) -> None:
    p, r = scene.view.px(positions), scene.joint_r
    for m in sorted(walker.muscles, key=lambda m: m.kind is MuscleKind.MUSCLE):  # muscles over bones
        colour = _MUSCLE if m.kind is MuscleKind.MUSCLE else _BONE
        draw.line([tuple(p[m.a]), tuple(p[m.b])], fill=_mix(colour, strength), width=round(scene.pen))
    for x, y in p:
        draw.ellipse([x - r, y - r, x + r, y + r], fill=_mix(_JOINT, strength), outline=_SKY, width=1)


def _draw_path(draw: ImageDraw.ImageDraw, scene: _Scene, centroids: np.ndarray) -> None:
    k, p = scene.view.density, [tuple(q) for q in scene.view.px(centroids)]
    if len(p) > 1:
        draw.line(p, fill=_TRAIL, width=max(1, round(1.5 * k)), joint="curve")
    x, y = p[-1]
    draw.ellipse([x - 2.5 * k, y - 2.5 * k, x + 2.5 * k, y + 2.5 * k], fill=_TRAIL)


def _label(draw: ImageDraw.ImageDraw, scene: _Scene, text: str) -> None:
    k = scene.view.density
    draw.text((12 * k, 10 * k), text, fill=_TEXT, font=_font(scene, 15))


def _dx_text(centroids: np.ndarray, end: int) -> str:
    return f"\u0394x = {centroids[end, 0] - centroids[0, 0]:+.2f}"


def _save_raster(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    return image.resize(size, Image.Resampling.LANCZOS)


def _big(size: tuple[int, int]) -> tuple[int, int]:
    return size[0] * _SUPERSAMPLE, size[1] * _SUPERSAMPLE


def render_png(
    walker: Walker,
    trajectory: np.ndarray,
    terrain: Terrain,
    path: str | Path,
    *,
    size: tuple[int, int] = (960, 360),
) -> Path:
    """A still: faded start and intermediate poses, the centroid's path, the final pose solid."""
    trajectory, path = _checked(walker, trajectory), Path(path)
    scene, centroids = _scene(walker, trajectory, terrain, _big(size)), trajectory.mean(axis=1)
    image = _background(scene)
    draw = ImageDraw.Draw(image)
    last = len(trajectory) - 1
    for i in sorted({round(t) for t in np.linspace(0, last, 5)[1:-1]} - {0, last}):
        _draw_pose(draw, scene, walker, trajectory[i], 0.14)
    _draw_pose(draw, scene, walker, trajectory[0], 0.35)
    _draw_path(draw, scene, centroids)
    _draw_pose(draw, scene, walker, trajectory[last], 1.0)
    _label(draw, scene, _dx_text(centroids, last))
    _save_raster(image, size).save(path, format="PNG", optimize=True)
    return path


def render_gif(
    walker: Walker,
    trajectory: np.ndarray,
    terrain: Terrain,
    path: str | Path,
    *,
    frame_duration_ms: int,
    size: tuple[int, int] = (640, 360),
) -> Path:
    """An animated GIF, one frame per trajectory frame, looping forever."""
    trajectory, path = _checked(walker, trajectory), Path(path)
    if frame_duration_ms <= 0:
        raise ConfigError(f"frame_duration_ms must be > 0, got {frame_duration_ms}")
    scene = _scene(walker, trajectory, terrain, _big(size))
    background = _background(scene)
    frames = (
        _gif_frame(scene, background, walker, trajectory, i, frame_duration_ms)
        for i in range(len(trajectory))
    )
    palette = _save_raster(
        _gif_frame(scene, background, walker, trajectory, len(trajectory) - 1, frame_duration_ms), size
    )
    palette = palette.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    quantized = (_save_raster(f, size).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames)
    first = next(quantized)
    first.save(
        path,
        format="GIF",
        save_all=True,
        append_images=quantized,
        duration=frame_duration_ms,
        loop=0,
        disposal=1,
        optimize=False,
    )
    return path


def _gif_frame(
    scene: _Scene,
    background: Image.Image,
    walker: Walker,
    trajectory: np.ndarray,
    i: int,
    frame_duration_ms: int,
) -> Image.Image:
    image = background.copy()
    draw = ImageDraw.Draw(image)
    centroids = trajectory[: i + 1].mean(axis=1)
    _draw_path(draw, scene, centroids)
    _draw_pose(draw, scene, walker, trajectory[i], 1.0)
    decimals = 2 if frame_duration_ms % 10 == 0 else 3  # exact times: no two frames look the same
    _label(draw, scene, f"t = {i * frame_duration_ms / 1000:.{decimals}f} s    {_dx_text(centroids, i)}")
    w, h = scene.view.size
    k, done = scene.view.density, (i + 1) / len(trajectory)
    draw.rectangle([0, h - 4 * k, w, h], fill=_mix(_GROUND, 0.9))
    draw.rectangle([0, h - 4 * k, w * done, h], fill=_BAR)
    return image


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
    trajectory, path = _checked(walker, trajectory), Path(path)
    if frame_duration_ms <= 0:
        raise ConfigError(f"frame_duration_ms must be > 0, got {frame_duration_ms}")
    scene = _scene(walker, trajectory, terrain, _HTML_SIZE)
    view = scene.view
    data = {
        "dt": frame_duration_ms,
        "view": [round(view.scale, 6), round(view.x0, 6), round(view.y0, 6), view.size[1]],
        "springs": [[m.a, m.b] for m in walker.muscles],
        "frames": np.round(trajectory, 3).reshape(len(trajectory), -1).tolist(),
    }
    heading = f"<h1>{html.escape(title)}</h1>" if title else ""
    page = _PAGE.format(
        title=html.escape(title or "Sodarace walker"),
        heading=heading,
        svg=_svg(scene, walker, trajectory[0]),
        last=len(trajectory) - 1,
        data=json.dumps(data, separators=(",", ":")),
        script=_SCRIPT,
    )
    path.write_text(page, encoding="utf-8")
    return path


def _svg(scene: _Scene, walker: Walker, start: np.ndarray) -> str:
    w, h = scene.view.size
    sx, gy = scene.view.px((0.0, 0.0))
    p = scene.view.px(start)
    parts = [
        f'<svg id="stage" viewBox="0 0 {w} {h}" role="img"><rect width="{w}" height="{h}" fill="{_SKY}"/>'
    ]
    parts.append(f'<line x1="{sx:.1f}" y1="{gy:.1f}" x2="{sx:.1f}" y2="0" class="start"/>')
    parts += [
        f'<polygon points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in poly)}" fill="{_GROUND}"/>'
        for poly in scene.fills
    ]
    edge = max(3, 1.2 * scene.pen)
    parts += [_svg_line(a, b, _EDGE, edge) for a, b in scene.edges]
    colours = {MuscleKind.MUSCLE: _MUSCLE, MuscleKind.DISTANCE: _BONE}
    for group, strength in (("ghost", 0.35), ("springs", 1.0)):
        parts.append(f'<g id="{group}" stroke-linecap="round">')
        parts += [
            _svg_line(p[m.a], p[m.b], "#%02x%02x%02x" % _mix(colours[m.kind], strength), scene.pen)
            for m in walker.muscles
        ]
        parts.append("</g>")
        if group == "ghost":
            parts.append(f'<polyline id="trail" fill="none" stroke="{_TRAIL}" stroke-width="1.5" points=""/>')
    parts.append(f'<g id="joints" fill="{_JOINT}" stroke="{_SKY}" stroke-width="1">')
    parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{scene.joint_r:.1f}"/>' for x, y in p]
    parts.append(f'</g><text id="clock" x="12" y="26" fill="{_TEXT}">t = 0.00 s</text></svg>')
    return "\n".join(parts)


def _svg_line(a: object, b: object, colour: str, width: float) -> str:
    (x1, y1), (x2, y2) = a, b  # type: ignore[misc]
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}" stroke-width="{width:.1f}"/>'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ margin: 0; padding: 16px; background: #eceae4; font: 14px system-ui, sans-serif; color: #3a3d42; }}
main {{ max-width: 960px; margin: auto; }} h1 {{ font-size: 18px; font-weight: 600; }}
svg {{ width: 100%; height: auto; display: block; border-radius: 6px; box-shadow: 0 1px 4px #0002; }}
.start {{ stroke: #3a3d4255; stroke-dasharray: 4 4; }} #clock {{ font: 15px system-ui, sans-serif; }}
.controls {{ display: flex; gap: 12px; align-items: center; margin-top: 10px; }}
.controls input {{ flex: 1; }} button {{ min-width: 72px; }}
</style></head>
<body><main>{heading}
{svg}
<div class="controls"><button id="play" type="button">Pause</button>
<input id="scrub" type="range" min="0" max="{last}" value="0"></div>
</main>
<script id="walker-data" type="application/json">{data}</script>
<script>{script}</script>
</body></html>
"""

_SCRIPT = """
const d = JSON.parse(document.getElementById("walker-data").textContent);
const [scale, x0, y0, height] = d.view, n = d.frames.length;
const lines = [...document.querySelectorAll("#springs line")], dots = [...document.querySelectorAll("#joints circle")];
const trail = document.getElementById("trail"), clock = document.getElementById("clock");
const button = document.getElementById("play"), scrub = document.getElementById("scrub");
const X = (x) => ((x - x0) * scale).toFixed(1), Y = (y) => (height - (y - y0) * scale).toFixed(1);
const centroid = d.frames.map((f) => {
  let x = 0, y = 0;
  for (let j = 0; j < f.length; j += 2) { x += f[j]; y += f[j + 1]; }
  return X(2 * x / f.length) + "," + Y(2 * y / f.length);
});
let frame = 0, playing = true, last = null;
function show(i) {
  frame = i;
  const f = d.frames[i], set = (el, k, v) => el.setAttribute(k, v);
  d.springs.forEach(([a, b], k) => {
    set(lines[k], "x1", X(f[2 * a])); set(lines[k], "y1", Y(f[2 * a + 1]));
    set(lines[k], "x2", X(f[2 * b])); set(lines[k], "y2", Y(f[2 * b + 1]));
  });
  dots.forEach((c, j) => { set(c, "cx", X(f[2 * j])); set(c, "cy", Y(f[2 * j + 1])); });
  trail.setAttribute("points", centroid.slice(0, i + 1).join(" "));
  clock.textContent = "t = " + (i * d.dt / 1000).toFixed(2) + " s";
  scrub.value = i;
}
function tick(now) {
  if (playing) {
    if (last === null) last = now;
    const steps = Math.floor((now - last) / d.dt);
    if (steps > 0) { last += steps * d.dt; show((frame + steps) % n); }
  }
  requestAnimationFrame(tick);
}
function setPlaying(on) { playing = on; last = null; button.textContent = on ? "Pause" : "Play"; }
button.onclick = () => setPlaying(!playing);
scrub.oninput = () => { setPlaying(false); show(Number(scrub.value)); };
show(0);
requestAnimationFrame(tick);
"""
