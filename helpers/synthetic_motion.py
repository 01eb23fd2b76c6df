"""Synthetic clips with known motion: the consistency benchmark's ground-truth judge (bench_consistency --synthetic).

Every frame is drawn from procedural pictures moved by motions the generator knows, so the optical flow and the
occlusions between consecutive frames are known exactly, with no flow estimator in the loop. Nothing is
downloaded; a clip is a pure function of its spec (numpy's PCG64 with fixed seeds, OpenCV drawing).

Pictures (:func:`texture`, float32 RGB 0..255): a "dead leaves" image -- random discs, radii drawn from
``p(r) ~ r^-3`` (scale invariance, as natural images), each a colour from a palette (earthy; a night one for another shot), some flat, some
carrying 1/f noise (amplitude spectrum ``1/f``) -- then a Gaussian blur of ``TEXTURE_BLUR`` pixels so the picture
is band-limited (bilinear resampling then reproduces it to about one level). Flat discs are where real flow
estimators disagree (the aperture problem); the truth does not care. The palette ``wall`` is a plain painted wall
instead (:func:`wall`): syn_wall, a still shot of objects moving in front of it, as cup.mp4; the palette ``sky``
a plain sky over textured ground (:func:`sky`): syn_skypan, a pan where most of the frame shows no motion of its
own, the opposite case, and syn_skyzoom, a zoom and a turn over the same kind of picture.

Layers. Layer 0 is the background picture seen by a camera; layers 1.. are objects (ellipses or rounded
rectangles cut from their own pictures) drawn in order, each hard-edged. With frame pixel ``p = (x, y)``
(pixel centres, 0-based) and the frame centre ``p0``:

    camera   A_t p = c_t + s_t R(theta_t) (p - p0)          texture position of frame pixel p (layer 0)
    object k B_kt p = q0 + R(-phi_kt) (p - P_kt)            sprite position (q0 the sprite's centre)
    frame_t(p) = top layer's picture at its position (bilinear, reflected borders)

``c_t`` (texture pixels), ``s_t`` (texture pixels per frame pixel: below 1 is zoomed in), ``theta_t``
(radians), ``P_kt`` (frame pixels), ``phi_kt`` (radians) are the motion, given per frame by the clip's spec.

Truth (:meth:`SyntheticClip.truth`), for frame t > 0 of a shot, with ``L_t(p)`` the top layer at ``p`` and ``T``
that layer's map (``A`` or ``B_k``)::

    w_t(p) = T_{t-1}^{-1}(T_t p) - p             the backward flow t -> t-1, exact (affine maps compose)
    valid_t(p) = q = p + w_t(p) inside the frame  and  I_t(p) = L_t(p)  and  I_{t-1}(round q) = L_t(p)

where ``I_t(p)`` is the layer at p when every pixel within ``margin`` (3) pixels has the same layer, else none:
occluded, disoccluded, out-of-frame pixels and a band of ``margin`` pixels along every layer edge (where a warp
or a blurred output mixes two motions) are excluded. The first frame of a shot (after a cut) has no valid pixel.
With that, ``warp(frame_{t-1}, w_t) = frame_t`` on the valid pixels up to the bilinear resampling of a
band-limited picture (tests/test_bench_judge.py checks it).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

TEXTURE_BLUR = 1.2
"""Gaussian sigma (texture pixels) that band-limits every picture."""
PALETTE = np.array([(92, 110, 60), (130, 150, 80), (60, 75, 45), (150, 120, 85), (110, 85, 60), (200, 190, 170),
                    (70, 95, 130), (150, 170, 200), (180, 70, 50), (220, 180, 90), (40, 40, 45), (235, 235, 225)],
                   np.float32)
"""Earthy RGB colours (foliage, soil, stone, sky, a few brighter accents) for the discs."""
PALETTE_NIGHT = np.array([(20, 28, 60), (35, 45, 90), (15, 15, 25), (60, 50, 110), (25, 60, 80), (90, 110, 160),
                          (10, 20, 35), (45, 30, 70), (140, 150, 200), (30, 80, 110), (5, 5, 10), (70, 90, 130)],
                         np.float32)
"""Dark blue-violet RGB colours (a night scene): another shot's picture with a luma histogram of its own, so a
cut to it is detected as one (luma histogram distance above the jobs' 0.4)."""
PALETTES = {"earth": PALETTE, "night": PALETTE_NIGHT, "wall": None, "sky": None}
"""``wall`` and ``sky`` are not palettes of discs: :func:`texture` draws a plain painted wall (:func:`wall`) or a
plain sky over textured ground (:func:`sky`) for them."""


def pink_noise(h: int, w: int, rng: np.random.Generator, channels: int = 1) -> np.ndarray:
    """float32 (h, w, channels) noise with amplitude spectrum 1/f (f in cycles per pixel), zero mean, unit std."""
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    out = np.empty((h, w, channels), np.float32)
    for c in range(channels):
        spec = (rng.normal(size=f.shape) + 1j * rng.normal(size=f.shape)) / f
        spec[0, 0] = 0
        x = np.fft.irfft2(spec, s=(h, w))
        out[..., c] = (x / max(float(x.std()), 1e-9)).astype(np.float32)
    return out


@functools.lru_cache(maxsize=8)
def texture(h: int, w: int, seed: int, palette: str = "earth") -> np.ndarray:
    """A dead-leaves picture (see the module docstring) drawn from ``PALETTES[palette]``, float32 RGB HWC 0..255,
    read-only."""
    if palette == "wall":
        return wall(h, w, seed)
    if palette == "sky":
        return sky(h, w, seed)
    pal = PALETTES[palette]
    rng = np.random.default_rng(seed)
    img = np.empty((h, w, 3), np.float32)
    img[:] = pal[rng.integers(len(pal))]
    amount = np.full((h, w), 0.3, np.float32)  # how much noise each disc carries
    r_min, r_max = 3.0, max(h, w) / 8
    n = int(h * w / 150)
    u = rng.random(n)
    radii = 1.0 / np.sqrt(1 / r_min**2 - u * (1 / r_min**2 - 1 / r_max**2))  # p(r) ~ r^-3 on [r_min, r_max]
    xs, ys = rng.uniform(-r_max, w + r_max, n), rng.uniform(-r_max, h + r_max, n)
    cols = pal[rng.integers(len(pal), size=n)] + rng.normal(0, 12, (n, 3)).astype(np.float32)
    flat = rng.random(n) < 0.35
    for x, y, r, col, fl in zip(xs, ys, radii, cols, flat):
        centre, rad = (int(round(x)), int(round(y))), int(round(r))
        cv2.circle(img, centre, rad, tuple(float(v) for v in col), -1, cv2.LINE_8)
        cv2.circle(amount, centre, rad, 0.05 if fl else float(rng.uniform(0.4, 1.0)), -1, cv2.LINE_8)
    noise = pink_noise(h, w, rng, 1)[..., 0]
    img += (18.0 * amount * noise)[..., None]
    img += pink_noise(h, w, rng, 3) * 4.0  # a little colour variation everywhere
    img = cv2.GaussianBlur(img, (0, 0), TEXTURE_BLUR)
    img = np.clip(img, 0, 255)
    img.setflags(write=False)
    return img


def wall(h: int, w: int, seed: int) -> np.ndarray:
    """A plain off-white wall, float32 RGB HWC 0..255, read-only: a soft light falloff (+-8 levels over the
    picture), faint 1/f grain (1.5 levels) and a few small grey marks (radius 1-3 px, one per ~40000 pixels): the
    flat background of a still shot where real flow estimators have nothing to hold on to but the marks. Cached
    through :func:`texture`."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 8.0 * np.cos(np.pi * (xx / w - 0.3)) * np.cos(np.pi * (yy / h - 0.4))
    img = np.empty((h, w, 3), np.float32)
    img[:] = (222.0, 219.0, 212.0)
    img += light[..., None]
    img += pink_noise(h, w, rng, 1) * 1.5
    for _ in range(max(1, h * w // 40000)):
        centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        grey = float(rng.uniform(90, 170))
        cv2.circle(img, centre, int(rng.integers(1, 4)), (grey, grey, grey * 0.97), -1, cv2.LINE_8)
    img = cv2.GaussianBlur(img, (0, 0), TEXTURE_BLUR)
    img = np.clip(img, 0, 255)
    img.setflags(write=False)
    return img


SKY_HORIZON = 0.52
"""Where the horizon of :func:`sky` runs, as a share of the picture's height (plus gentle hills of +-3 %)."""


def sky(h: int, w: int, seed: int) -> np.ndarray:
    """A plain sky above textured ground, float32 RGB HWC 0..255, read-only: above a hilly horizon (at
    ``SKY_HORIZON`` of the height, +-3 %) a blue that lightens towards the horizon (by about 0.06 levels per pixel)
    with faint 1/f grain (1.5 levels), below it the earthy dead-leaves picture of the same seed. A camera panning
    over it moves the ground visibly and the sky not at all: a flow has only the horizon to tell the sky's motion
    by. Cached through :func:`texture`."""
    rng = np.random.default_rng(seed + 7)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon = h * (SKY_HORIZON + 0.02 * np.sin(2 * np.pi * xx / (w / 3.1) + 1.0)
                   + 0.01 * np.sin(2 * np.pi * xx / (w / 7.3)))
    depth = np.clip(yy / (h * SKY_HORIZON), 0, 1)[..., None]  # 0 at the top, 1 at the horizon
    img = (1 - depth) * np.float32((95, 140, 205)) + depth * np.float32((185, 205, 228))
    img += pink_noise(h, w, rng, 1) * 1.5
    ground = texture(h, w, seed, "earth")
    below = (yy >= horizon)[..., None]
    img = np.where(below, ground, cv2.GaussianBlur(img, (0, 0), TEXTURE_BLUR)).astype(np.float32)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)  # the horizon's edge, band-limited like the rest
    img = np.clip(img, 0, 255)
    img.setflags(write=False)
    return img


def _rot(a: float) -> np.ndarray:
    return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])


def _affine(lin: np.ndarray, off: np.ndarray) -> np.ndarray:
    """3x3 homogeneous matrix of ``x -> lin @ x + off``."""
    m = np.eye(3)
    m[:2, :2], m[:2, 2] = lin, off
    return m


@dataclass(frozen=True)
class Sprite:
    """A foreground object: its own picture (seed), shape ("ellipse" or "box": a rounded rectangle), half sizes
    (a, b) in pixels, and its motion: centre ``P_t = p + v t + 0.5 acc t^2`` (frame pixels, t from the shot's
    start) and angle ``phi_t = spin * t`` (radians)."""

    seed: int
    shape: str
    a: float
    b: float
    p: tuple[float, float]
    v: tuple[float, float]
    acc: tuple[float, float] = (0.0, 0.0)
    spin: float = 0.0

    def matrix(self, t: int) -> np.ndarray:
        """B_t as 3x3: frame pixel -> sprite pixel."""
        pt = np.array(self.p) + np.array(self.v) * t + 0.5 * np.array(self.acc) * t * t
        q0 = np.array([self.size[0] - 1, self.size[1] - 1]) / 2
        r = _rot(-self.spin * t)
        return _affine(r, q0 - r @ pt)

    @property
    def size(self) -> tuple[int, int]:
        """Sprite picture (width, height): room for the shape turned any way."""
        s = int(math.ceil(2 * math.hypot(self.a, self.b))) + 8
        return s, s

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Whether sprite positions (u, v) are inside the shape (bool)."""
        q0u, q0v = (self.size[0] - 1) / 2, (self.size[1] - 1) / 2
        du, dv = (u - q0u) / self.a, (v - q0v) / self.b
        if self.shape == "ellipse":
            return du * du + dv * dv <= 1.0
        return du**4 + dv**4 <= 1.0  # a superellipse: a box with rounded corners


@dataclass(frozen=True)
class Shot:
    """One scene: a background picture (seed) seen by a camera (centre ``c + cv t + 0.5 ca t^2`` texture pixels,
    scale ``s0 * zoom^t`` texture pixels per frame pixel, angle ``rot * t`` radians, plus ``wobble``: a
    vertical sine of that amplitude in pixels, period 12 frames) and objects drawn in order."""

    seed: int
    frames: int
    c: tuple[float, float]
    cv: tuple[float, float] = (0.0, 0.0)
    ca: tuple[float, float] = (0.0, 0.0)
    s0: float = 1.0
    zoom: float = 1.0
    rot: float = 0.0
    wobble: float = 0.0
    sprites: tuple[Sprite, ...] = ()
    palette: str = "earth"
    """The background picture's colours (a key of PALETTES); objects keep the earthy palette."""

    def camera(self, t: int, size: tuple[int, int]) -> np.ndarray:
        """A_t as 3x3: frame pixel -> texture pixel."""
        w, h = size
        p0 = np.array([(w - 1) / 2, (h - 1) / 2])
        c = np.array(self.c) + np.array(self.cv) * t + 0.5 * np.array(self.ca) * t * t
        c = c + np.array([0.0, self.wobble * math.sin(2 * math.pi * t / 12)])
        lin = self.s0 * self.zoom**t * _rot(self.rot * t)
        return _affine(lin, c - lin @ p0)


TEX_SIZE = (2304, 1280)
"""Background picture size (width, height) in texture pixels for a 384-pixel-wide clip (it scales with the
width); the camera paths of :func:`clip_set` stay inside it for 48 frames."""


@dataclass(frozen=True)
class SyntheticClip:
    """A clip of shots (cuts between them) at ``size`` = (width, height) pixels; see the module docstring."""

    name: str
    shots: tuple[Shot, ...]
    size: tuple[int, int] = (384, 216)
    margin: int = 3
    note: str = field(default="", compare=False)

    @property
    def tex_size(self) -> tuple[int, int]:
        """(width, height) of the background pictures: TEX_SIZE scaled by width / 384."""
        k = self.size[0] / 384
        return round(TEX_SIZE[0] * k), round(TEX_SIZE[1] * k)

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.shots)

    def _where(self, t: int) -> tuple[Shot, int]:
        if not 0 <= t < self.frames:
            raise IndexError(t)
        for s in self.shots:
            if t < s.frames:
                return s, t
            t -= s.frames
        raise IndexError(t)

    def _grid(self) -> np.ndarray:
        w, h = self.size
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
        return np.stack([gx, gy, np.ones_like(gx)], axis=-1)

    def _maps(self, shot: Shot, t: int) -> list[np.ndarray]:
        """3x3 maps of layer 0 (camera) and every sprite at shot frame t."""
        return [shot.camera(t, self.size), *(sp.matrix(t) for sp in shot.sprites)]

    def render(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(frame t RGB uint8 HWC, layer id int16 HW: 0 background, k sprite k)."""
        shot, st = self._where(t)
        g = self._grid()
        tex = texture(self.tex_size[1], self.tex_size[0], shot.seed, shot.palette)
        maps = self._maps(shot, st)
        pos = (g @ maps[0].T)[..., :2].astype(np.float32)
        img = cv2.remap(tex, pos, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        layer = np.zeros(img.shape[:2], np.int16)
        for k, (sp, m) in enumerate(zip(shot.sprites, maps[1:]), start=1):
            uv = (g @ m.T)[..., :2]
            ins = sp.inside(uv[..., 0], uv[..., 1])
            stex = texture(sp.size[1], sp.size[0], sp.seed)
            col = cv2.remap(stex, uv.astype(np.float32), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            img[ins] = col[ins]
            layer[ins] = k
        return np.clip(np.rint(img), 0, 255).astype(np.uint8), layer

    def frame(self, t: int) -> np.ndarray:
        return self.render(t)[0]

    def _interior(self, layer: np.ndarray) -> np.ndarray:
        """The layer id where every pixel within ``margin`` has it, else -1."""
        k = np.ones((2 * self.margin + 1, 2 * self.margin + 1), np.uint8)
        lo = cv2.erode(layer, k, borderType=cv2.BORDER_REPLICATE)
        hi = cv2.dilate(layer, k, borderType=cv2.BORDER_REPLICATE)
        return np.where(lo == hi, layer, -1).astype(np.int16)

    def truth(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """(w_t: the exact flow t -> t-1, float32 HxWx2 pixels; valid_t: bool HxW) for frame t >= 1; a shot's
        first frame (a cut) has no valid pixel (and a zero flow)."""
        shot, st = self._where(t)
        w, h = self.size
        if st == 0:
            return np.zeros((h, w, 2), np.float32), np.zeros((h, w), bool)
        _, lay = self.render(t)
        _, lay_prev = self.render(t - 1)
        g = self._grid()
        cur, prev = self._maps(shot, st), self._maps(shot, st - 1)
        q = np.zeros((h, w, 2))
        for k, (mc, mp) in enumerate(zip(cur, prev)):
            sel = lay == k
            q[sel] = (g[sel] @ (np.linalg.inv(mp) @ mc).T)[:, :2]
        flow = (q - g[..., :2]).astype(np.float32)
        inside = (q[..., 0] >= 0) & (q[..., 0] <= w - 1) & (q[..., 1] >= 0) & (q[..., 1] <= h - 1)
        qi = np.clip(np.rint(q), 0, [w - 1, h - 1]).astype(np.intp)
        interior_prev = self._interior(lay_prev)[qi[..., 1], qi[..., 0]]
        valid = inside & (self._interior(lay) == lay) & (interior_prev == lay)
        return flow, valid

    def write(self, path: Path, fps: float = 12.0) -> Path:
        """The clip as a lossless video (FFV1 in Matroska, BGR0): decoding gives back the frames exactly."""
        import av

        w, h = self.size
        with av.open(str(path), "w") as c:
            s = c.add_stream("ffv1", rate=Fraction(fps).limit_denominator(1001))
            s.width, s.height, s.pix_fmt = w, h, "bgr0"
            for t in range(self.frames):
                for pk in s.encode(av.VideoFrame.from_ndarray(self.frame(t), format="rgb24")):
                    c.mux(pk)
            for pk in s.encode():
                c.mux(pk)
        return Path(path)


def _scaled(v, k: float):
    return tuple(x * k for x in v)


def clip_set(width: int = 384, frames: int = 48) -> dict[str, SyntheticClip]:
    """The benchmark's synthetic clips at ``width`` pixels (16:9, height a multiple of 8), ``frames`` frames
    each; motions are given for width 384 and scale with the width (pixels per frame)."""
    h = max(8, int(round(width * 9 / 16 / 8)) * 8)
    size = (width, h)
    k = width / 384
    n = frames
    tc = (TEX_SIZE[0] * k / 2, TEX_SIZE[1] * k / 2)  # the centre of the background pictures (they scale with k)

    def sp(seed, shape, a, b, p, v, acc=(0.0, 0.0), spin=0.0):
        return Sprite(seed, shape, a * k, b * k, _scaled(p, k), _scaled(v, k), _scaled(acc, k), spin)

    clips = [
        SyntheticClip("syn_pan", (Shot(11, n, (tc[0] - 72 * k, tc[1] - 30 * k), cv=(3.0 * k, 1.2 * k), rot=0.002,
                                       sprites=(sp(101, "ellipse", 34, 24, (40, 150), (4.0, -0.8)),
                                                sp(102, "box", 26, 40, (330, 70), (-2.5, 0.6), spin=0.01))),),
                      size, note="slow pan (3 px/frame), two objects crossing"),
        SyntheticClip("syn_fastpan", (Shot(12, n, (tc[0] - 760 * k, tc[1]), cv=(20.0 * k, 0.0), ca=(20.0 * k / max(1, n - 1), 0.0),
                                           wobble=4.0 * k,
                                           sprites=(sp(103, "ellipse", 40, 30, (300, 120), (-6.0, 0.5)),)),),
                      size, note="fast pan 20 -> 40 px/frame with a vertical wobble, one object against it"),
        SyntheticClip("syn_zoomrot", (Shot(13, n, tc, cv=(1.0 * k, 0.5 * k), s0=1.15, zoom=0.988, rot=0.012,
                                           sprites=(sp(104, "box", 30, 22, (60, 60), (5.0, 1.5), spin=-0.03),
                                                    sp(105, "ellipse", 22, 36, (300, 170), (-3.0, -1.5))),),),
                      size, note="zoom in 1.2 %/frame and rotation 0.7 deg/frame, two objects"),
        SyntheticClip("syn_static", (Shot(14, n, tc,
                                          sprites=(sp(106, "box", 18, 45, (30, 110), (5.5, 0.0)),
                                                   sp(107, "box", 20, 48, (350, 115), (-4.0, 0.2)),
                                                   sp(108, "ellipse", 46, 34, (190, 230), (0.5, -3.5), spin=0.02))),),
                      size, note="still camera, three objects walking across and occluding each other"),
        SyntheticClip("syn_fastobj", (Shot(17, n, (tc[0] - 300 * k, tc[1]), cv=(12.0 * k, 0.0), wobble=2.0 * k,
                                           sprites=(sp(111, "box", 36, 28, (-20, 70), (22.0, 1.0), spin=0.05),
                                                    sp(112, "ellipse", 30, 40, (420, 150), (-18.0, -1.0)),
                                                    sp(113, "ellipse", 24, 24, (200, -30), (2.0, 9.0),
                                                       acc=(0.0, -0.35)))),),
                      size, note="pan 12 px/frame, objects crossing at 18-22 px/frame (one turning), one thrown up"),
        SyntheticClip("syn_wall", (Shot(18, n, tc, palette="wall",
                                        sprites=(sp(114, "box", 24, 52, (120, 118), (3.0, -0.4), spin=0.03),
                                                 sp(115, "ellipse", 30, 22, (300, 60), (-1.5, 1.0), spin=-0.02))),),
                      size, note="still camera on a plain wall, two textured objects moving and turning in front of it"),
        SyntheticClip("syn_skypan", (Shot(23, n, (tc[0] - 96 * k, tc[1] + 8 * k), cv=(4.0 * k, 0.0), palette="sky",
                                          sprites=(sp(116, "ellipse", 18, 10, (330, 45), (-3.0, 0.3), spin=0.01),)),),
                      size, note="pan 4 px/frame over a plain sky (about 60 % of the frame) above textured ground, "
                                 "one object flying across the sky against it"),
        SyntheticClip("syn_skyzoom", (Shot(24, n, (tc[0] - 96 * k, tc[1] + 8 * k), zoom=0.988, rot=0.006,
                                           palette="sky",
                                           sprites=(sp(117, "ellipse", 16, 10, (300, 50), (-2.5, 0.4), spin=0.01),)),),
                      size, note="zoom in 1.2 %/frame with a slow turn (0.34 deg/frame) over a plain sky above "
                                 "textured ground, one object flying across the sky"),
        SyntheticClip("syn_cut", (Shot(15, n // 2, (tc[0] + 300 * k, tc[1]), cv=(-8.0 * k, 0.0),
                                       sprites=(sp(109, "ellipse", 30, 30, (100, 108), (6.0, 0.0)),)),
                                  Shot(16, n - n // 2, tc, cv=(0.0, 2.0 * k), s0=0.8, zoom=1.01, palette="night",
                                       sprites=(sp(110, "box", 34, 26, (320, 60), (-5.0, 2.0), spin=0.02),))),
                      size, note="pan 8 px/frame, a cut to a night scene (another palette), then a slow zoom out "
                                 "with tilt; an object in each shot"),
    ]
    return {c.name: c for c in clips}
