"""Motion, colour-key and user masks, how they combine, and how to see them.

All masks are float32 (H, W) in 0..1 where **1 means "this pixel may change"** (CONTRIBUTING.md).
Frames are RGB uint8 HWC unless a docstring says otherwise.

Motion mask (:func:`motion_mask`)
    ``g = |0.299 t_R + 0.587 t_G + 0.114 t_B| * 255`` -- the absolute BT.601 luma of the source delta
    ``t = src[i] - src[i-1]`` (float, -1..1), expressed in grey levels 0..255. It is normalised by the
    fixed full scale 255, *not* by the frame's own maximum: with a fixed scale the low-cut means the same
    thing in every frame ("a change of at least ``low_cut`` grey levels"), whereas per-frame max
    normalisation would blow sensor noise in a static shot up to full range and let it all change.
    Then ``m = [g >= low_cut]`` (binary; ``low_cut = 0`` lets the whole frame change), dilated with a
    ``high_ext x high_ext`` square (odd, 1..15, 1 = none), then blurred by a gaussian of sigma ``soft``
    pixels (0 = hard edges). Every step is monotonic, so a higher low-cut never gives a larger mask and a
    larger high-ext never a smaller one, pixel by pixel.

Colour-key mask (:func:`colour_key_mask`)
    ``1`` where ``|frame_c - target_c| <= range_c`` for all three channels (inclusive), else ``0``.
    :func:`fill_masked` fills the keyed area before img2img: ``none``, ``noise`` (gaussian),
    ``telea`` / ``ns`` (OpenCV inpainting, radius in pixels). Only pixels with mask > 0 change.

User masks (:class:`UserMaskSource`)
    From a folder of numbered images, a single image, a mask video, or the frame's alpha channel; see
    the class docstring for matching, sizing, threshold, invert and blur.

Combining (:func:`combine_masks`)
    The restricting masks -- motion, depth, user -- say where a pixel *may* change, so they combine as
    a fuzzy AND: ``how="multiply"`` gives ``M = motion * depth * user`` (the default; for binary masks it
    is exactly AND, for soft masks the soft edges compound), ``how="min"`` gives ``min(motion, depth,
    user)`` (soft edges do not compound). Missing masks are left out (they count as all ones). The
    colour key then either adds its area (``colour_key_op="union"``: ``M = max(M, K)`` -- keyed pixels
    are repainted whatever the motion says, e.g. a green screen to replace) or removes it
    (``"remove"``: ``M = M * (1 - K)`` -- keyed pixels are protected, e.g. a logo in a key colour).
    :func:`mask_overlay` paints each mask in its own colour over the frame so the combination is visible.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from .errors import SettingsError, Vid2VidError
from .fdc import scratch

if TYPE_CHECKING:
    from .params import Settings

_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
"""BT.601 luma weights for R, G, B."""

FILLS = ("none", "noise", "telea", "ns")
COMBINE = ("multiply", "min")
COLOUR_KEY_OPS = ("union", "remove")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")

OVERLAY_COLOURS: dict[str, tuple[int, int, int]] = {
    "motion": (255, 64, 64),
    "depth": (64, 128, 255),
    "user": (64, 255, 64),
    "colour_key": (255, 0, 255),
    "combined": (255, 255, 0),
}
"""RGB colour each named mask is painted in by :func:`mask_overlay`."""


# --------------------------------------------------------------------------------------------- motion


def any_mask(settings: Settings) -> bool:
    """True when some mask is enabled (motion, colour key, user, depth): the passes then write ``frames/masks``."""
    c = settings.correction
    return c.motion_mask or c.colour_key or c.user_mask_kind != "none" or c.depth_mask


def user_mask_source(settings: Settings, input_path: str | Path) -> UserMaskSource | None:
    """The settings' user mask reader (``user_mask_*``), or None without one; ``alpha`` with no path reads the
    source video's own alpha (``input_path``)."""
    c = settings.correction
    if c.user_mask_kind == "none":
        return None
    path = c.user_mask_path.strip() or None
    if c.user_mask_kind == "alpha" and path is None:
        path = str(input_path)
    return UserMaskSource(c.user_mask_kind, path, threshold=c.user_mask_threshold or None,
                          invert=c.user_mask_invert, blur=c.user_mask_blur)


def delta_grey(src_prev: np.ndarray, src_cur: np.ndarray) -> np.ndarray:
    """``|luma(src_cur - src_prev)|`` in grey levels, float32 HW 0..255 (BT.601 weights, no rounding)."""
    if src_prev.shape != src_cur.shape or src_cur.ndim != 3 or src_cur.shape[2] != 3:
        raise Vid2VidError(
            f"source frames must be RGB HWC of one size, got {src_prev.shape} and {src_cur.shape}"
        )
    t = cv2.subtract(src_cur, src_prev, dst=scratch("mt", src_cur.shape), dtype=cv2.CV_32F)
    g = cv2.transform(t, _LUMA.reshape(1, 3), dst=scratch("mg", src_cur.shape[:2]))
    return np.abs(g)


def _check_motion(low_cut: float, high_ext: int, soft: float) -> None:
    if not 0 <= low_cut <= 255:
        raise SettingsError("motion_low_cut", f"{low_cut} is outside 0..255")
    if not (1 <= high_ext <= 15 and int(high_ext) == high_ext and high_ext % 2 == 1):
        raise SettingsError("motion_high_ext", f"{high_ext} must be an odd whole number in 1..15 (1 = no dilation)")
    if soft < 0:
        raise SettingsError("motion_soft", f"{soft} must be >= 0 (gaussian sigma in pixels, 0 = hard edges)")


def motion_mask_from_grey(grey: np.ndarray, *, low_cut: float = 8, high_ext: int = 1, soft: float = 0.0) -> np.ndarray:
    """Motion mask from a delta grey map (float32 HW, grey levels 0..255); see the module docstring.

    ``m = blur_soft(dilate_high_ext([grey >= low_cut]))``, float32 HW 0..1.
    """
    _check_motion(low_cut, high_ext, soft)
    if low_cut <= 0:
        m = np.ones(grey.shape, np.uint8)
    else:
        m = (grey >= np.float32(low_cut)).view(np.uint8)
    if high_ext > 1:
        kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (int(high_ext), int(high_ext)))
        m = cv2.dilate(m, kernel)
    out = m.astype(np.float32)
    if soft > 0:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=float(soft), borderType=cv2.BORDER_REPLICATE)
    return out


def motion_mask(
    src_prev: np.ndarray, src_cur: np.ndarray, *, low_cut: float = 8, high_ext: int = 1, soft: float = 0.0
) -> np.ndarray:
    """Motion mask from two RGB uint8 source frames: 1 where the source moved by >= ``low_cut`` grey levels.

    ``low_cut`` 0..255 grey levels; ``high_ext`` odd 1..15 square dilation (1 = none); ``soft`` gaussian
    sigma in pixels (0 = hard). Returns float32 HW 0..1.
    """
    return motion_mask_from_grey(delta_grey(src_prev, src_cur), low_cut=low_cut, high_ext=high_ext, soft=soft)


# ----------------------------------------------------------------------------------------- colour key


def _triple(value, field: str, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.int64).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 3)
    if arr.size != 3 or arr.min() < lo or arr.max() > hi:
        raise SettingsError(field, f"{value!r} must be one number or three (R, G, B), each in {lo}..{hi}")
    return arr


def colour_key_mask(frame: np.ndarray, target, tolerance) -> np.ndarray:
    """1 where every channel is within ``target ± tolerance`` (inclusive), else 0; float32 HW.

    ``frame`` RGB uint8 HWC; ``target`` (R, G, B) 0..255; ``tolerance`` one number or (R, G, B), 0..255.
    """
    tgt = _triple(target, "colour_key_target", 0, 255)
    tol = _triple(tolerance, "colour_key_range", 0, 255)
    lower = np.clip(tgt - tol, 0, 255).astype(np.float64)
    upper = np.clip(tgt + tol, 0, 255).astype(np.float64)
    m = cv2.inRange(frame, lower, upper)  # inclusive on both ends, 255 inside
    return (m > 0).astype(np.float32)


def fill_masked(
    frame: np.ndarray,
    mask: np.ndarray,
    method: str = "none",
    *,
    noise_level: float = 1.0,
    seed: int = 0,
    radius: float = 3.0,
) -> np.ndarray:
    """Fill the masked area of an RGB uint8 frame before img2img; returns RGB uint8 HWC.

    ``F`` is the fill, ``out = frame + M * (F - frame)`` (rounded), so pixels with ``M = 0`` are unchanged.

    * ``none``: ``F = frame``.
    * ``noise``: ``F = (1 - level) * frame + level * N``, ``N ~ clip(normal(127.5, 64))`` per pixel and
      channel, from ``numpy.random.default_rng(seed)`` (deterministic); ``noise_level`` 0..1.
    * ``telea`` / ``ns``: ``cv2.inpaint`` (Telea or Navier-Stokes) over the pixels with ``M > 0``,
      ``radius`` in pixels.
    """
    if method not in FILLS:
        raise SettingsError("colour_key_fill", f"unknown fill {method!r}; choose one of {', '.join(FILLS)}")
    if mask.shape != frame.shape[:2]:
        raise Vid2VidError(f"mask {mask.shape} and frame {frame.shape[:2]} differ in size; resize the mask")
    if method == "none" or not np.any(mask > 0):
        return frame.copy()
    if method == "noise":
        if not 0 <= noise_level <= 1:
            raise SettingsError("colour_key_noise", f"{noise_level} is outside 0..1")
        rng = np.random.default_rng(seed)
        noise = np.clip(rng.normal(127.5, 64.0, frame.shape), 0, 255).astype(np.float32)
        fill = (1.0 - noise_level) * frame.astype(np.float32) + noise_level * noise
    else:
        if radius <= 0:
            raise SettingsError("colour_key_radius", f"{radius} must be > 0 (pixels)")
        flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
        m8 = (mask > 0).astype(np.uint8) * 255
        bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
        fill = cv2.cvtColor(cv2.inpaint(bgr, m8, float(radius), flag), cv2.COLOR_BGR2RGB).astype(np.float32)
    m = np.clip(mask, 0.0, 1.0).astype(np.float32)[:, :, None]
    base = frame.astype(np.float32)
    out = base + m * (fill - base)
    out = np.rint(out, out=out)
    # pixels outside the mask are copied exactly (no float round trip)
    result = np.clip(out, 0, 255).astype(np.uint8)
    keep = mask <= 0
    result[keep] = frame[keep]
    return result


# ------------------------------------------------------------------------------------------ user masks


def _luma_u8_to_float(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC -> float32 HW 0..1 luma (BT.601)."""
    return cv2.transform(rgb.astype(np.float32), (_LUMA / 255.0).reshape(1, 3))


def _last_number(name: str) -> int | None:
    groups = re.findall(r"\d+", name)
    return int(groups[-1]) if groups else None


class _MaskVideo:
    """Tiny sequential PyAV reader: frame k (0-based, decode order of presentation) as RGB or RGBA."""

    def __init__(self, path: Path, fmt: str):
        self.path = path
        self.fmt = fmt
        self._container = None
        self._iter = None
        self._next = 0
        self._last: tuple[int, np.ndarray] | None = None

    def _open(self):
        import av

        from .video_probe import open_input

        self.close()
        try:
            # open_input: FFmpeg runs only the allowed demuxers (video containers, apng, image sequences), so a
            # playlist or concat list given as a mask cannot make it open other files or URLs
            self._container = open_input(self.path)
            stream = self._container.streams.video[0]
        except Vid2VidError as exc:
            self.close()
            raise Vid2VidError(f"cannot read mask video {self.path}: {exc}") from None
        except (av.FFmpegError, IndexError, OSError) as exc:
            self.close()
            raise Vid2VidError(f"cannot read mask video {self.path}: {exc}; check it is a video file") from exc
        self._iter = self._container.decode(stream)
        self._next = 0

    def frame(self, k: int) -> np.ndarray:
        import av

        if self._last is not None and self._last[0] == k:
            return self._last[1]
        if self._iter is None or k < self._next:
            self._open()
        try:
            while True:
                try:
                    fr = next(self._iter)
                except StopIteration:
                    n = self._next
                    raise Vid2VidError(
                        f"mask video {self.path} has {n} frames but frame {k} was asked for; "
                        "use a mask video at least as long as the clip"
                    ) from None
                idx = self._next
                self._next += 1
                if idx == k:
                    arr = fr.to_ndarray(format=self.fmt)
                    self._last = (k, arr)
                    return arr
        except av.FFmpegError as exc:
            raise Vid2VidError(f"mask video {self.path} is unreadable at frame {k}: {exc}") from exc

    def has_alpha(self) -> bool:
        """True if the stream's pixel format carries alpha (or a palette, which may)."""
        if self._container is None:
            self._open()
        fmt = self._container.streams.video[0].codec_context.format
        return fmt is not None and (fmt.has_palette or any(c.is_alpha for c in fmt.components))

    def close(self):
        if self._container is not None:
            self._container.close()
        self._container = None
        self._iter = None


class UserMaskSource:
    """A user-supplied mask per frame.

    Kinds (``kind``):

    * ``"folder"``: a folder of images. **Matching rule:** a file's number is the *last* run of digits in
      its name (``000012.png`` -> 12, ``mask_12.png`` -> 12, ``shot3_0012.png`` -> 12); non-image files and
      names without digits are ignored. File number ``n`` is the mask for frame index
      ``k = n - start_number`` (frame indices are 0-based). ``start_number=None`` (default) takes the
      smallest number present, so ``000001.png`` (ffmpeg's default) and ``0000.png`` both pair with the
      first frame. Two files with the same number are an error; a frame with no file is an error naming
      the frame, the expected number and the folder.
    * ``"image"``: one image used for every frame.
    * ``"video"``: a mask video; its k-th decoded frame (0-based) is the mask of frame k, no time
      resampling. Decoded with PyAV, sequentially (seeking back reopens the file).
    * ``"alpha"``: the frame's own alpha channel, passed as ``alpha=`` to :meth:`get` (uint8 HW 0..255,
      or an RGBA frame), or, when ``path`` is given, the alpha of frame k of that video/image file.

    Processing, in this order: grey = BT.601 luma of the image (or the alpha) in 0..1; **resize** to the
    frame size with ``INTER_AREA`` when shrinking (averages coverage) and ``INTER_LINEAR`` when enlarging
    (smooth contours after the threshold instead of nearest's blocks); **threshold** (0..255, ``None``
    keeps the grey levels): ``m = [grey * 255 >= threshold]``; **invert**: ``m = 1 - m``; **blur**:
    gaussian of sigma ``blur`` pixels (0 = none).

    **Size policy:** a mask of another size is resized if its aspect ratio is within 2 % of the frame's
    (this absorbs rounding such as 1920x1080 -> 512x288); a truly different aspect (e.g. 4:3 mask, 16:9
    frame) raises a :class:`Vid2VidError` instead of stretching silently. Pass the size of the frames the
    mask was drawn on (the source size) when the pipeline changes the aspect, and transform the mask like
    the frames.
    """

    KINDS = ("folder", "image", "video", "alpha")
    ASPECT_TOLERANCE = 0.02

    def __init__(
        self,
        kind: str,
        path: str | Path | None = None,
        *,
        threshold: float | None = 128,
        invert: bool = False,
        blur: float = 0.0,
        start_number: int | None = None,
    ):
        if kind not in self.KINDS:
            raise SettingsError("user_mask_kind", f"unknown kind {kind!r}; choose one of {', '.join(self.KINDS)}")
        if threshold is not None and not 0 <= threshold <= 255:
            raise SettingsError("user_mask_threshold", f"{threshold} is outside 0..255")
        if blur < 0:
            raise SettingsError("user_mask_blur", f"{blur} must be >= 0 (gaussian sigma in pixels)")
        self.kind = kind
        self.path = Path(path) if path is not None else None
        self.threshold = threshold
        self.invert = bool(invert)
        self.blur = float(blur)
        self._files: dict[int, Path] = {}
        self._start = 0
        self._image: np.ndarray | None = None
        self._video: _MaskVideo | None = None
        if kind != "alpha" and self.path is None:
            raise SettingsError("user_mask_path", f"a {kind} mask needs a path")
        if self.path is not None and not self.path.exists():
            raise Vid2VidError(f"user mask {kind} not found: {self.path}; check the path")
        if kind == "folder":
            self._index_folder(start_number)
        elif kind == "image":
            if not self.path.is_file():
                raise Vid2VidError(f"user mask image {self.path} is not a file; give an image file")
            self._image = _read_grey(self.path)
        elif kind == "video":
            if not self.path.is_file():
                raise Vid2VidError(f"user mask video {self.path} is not a file; give a video file")
            self._video = _MaskVideo(self.path, "rgb24")
        elif kind == "alpha" and self.path is not None:
            if self.path.suffix.lower() in IMAGE_SUFFIXES:
                self._image = _read_alpha(self.path)
            else:
                self._video = _MaskVideo(self.path, "rgba")
                if not self._video.has_alpha():
                    self._video.close()
                    raise Vid2VidError(
                        f"{self.path} has no alpha channel; use a video with alpha (e.g. ProRes 4444, VP9 yuva420p, PNG)"
                    )

    def _index_folder(self, start_number: int | None) -> None:
        if not self.path.is_dir():
            raise Vid2VidError(f"user mask folder {self.path} is not a folder")
        for p in sorted(self.path.iterdir()):
            if not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            n = _last_number(p.stem)
            if n is None:
                continue
            if n in self._files:
                raise Vid2VidError(
                    f"user mask folder {self.path}: {self._files[n].name} and {p.name} both have number {n}; keep one"
                )
            self._files[n] = p
        if not self._files:
            raise Vid2VidError(
                f"user mask folder {self.path} has no numbered images ({', '.join(IMAGE_SUFFIXES)}); "
                "name them like 000001.png"
            )
        self._start = min(self._files) if start_number is None else int(start_number)

    def close(self) -> None:
        if self._video is not None:
            self._video.close()

    def raw(self, index: int, alpha: np.ndarray | None = None) -> np.ndarray:
        """The unprocessed grey mask of frame ``index`` (0-based), float32 HW 0..1, at its own size."""
        if self.kind == "folder":
            n = index + self._start
            p = self._files.get(n)
            if p is None:
                raise Vid2VidError(
                    f"user mask for frame {index} missing: no image numbered {n} in {self.path}; "
                    "add it or fix the numbering"
                )
            return _read_grey(p)
        if self._image is not None:
            return self._image
        if self._video is not None:
            arr = self._video.frame(index)
            if self.kind == "alpha":
                return arr[:, :, 3].astype(np.float32) * np.float32(1 / 255)
            return _luma_u8_to_float(arr)
        # alpha passed in
        if alpha is None:
            raise Vid2VidError("user mask 'alpha' needs the frame's alpha channel; the source frame has none")
        a = np.asarray(alpha)
        if a.ndim == 3:
            if a.shape[2] != 4:
                raise Vid2VidError(f"frame has {a.shape[2]} channels, no alpha; use an RGBA source or another mask")
            a = a[:, :, 3]
        if a.dtype != np.uint8:
            raise Vid2VidError(f"alpha must be uint8 0..255, got {a.dtype}")
        return a.astype(np.float32) * np.float32(1 / 255)

    def get(self, index: int, size: tuple[int, int], *, alpha: np.ndarray | None = None) -> np.ndarray:
        """Mask for frame ``index`` (0-based) at ``size = (width, height)``: float32 HW 0..1, 1 = may change."""
        grey = self.raw(index, alpha)
        grey = _fit(grey, size, f"user mask for frame {index}")
        return process_mask(grey, threshold=self.threshold, invert=self.invert, blur=self.blur)


def process_mask(grey: np.ndarray, *, threshold: float | None = 128, invert: bool = False, blur: float = 0.0):
    """Threshold (0..255 on ``grey * 255``, inclusive; ``None`` keeps grey), invert, gaussian blur (sigma px)."""
    m = grey.astype(np.float32, copy=False)
    if threshold is not None:
        m = (m * np.float32(255.0) >= np.float32(threshold) - np.float32(1e-3)).astype(np.float32)
    if invert:
        m = 1.0 - m
    if blur > 0:
        m = cv2.GaussianBlur(m, (0, 0), sigmaX=float(blur), borderType=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(m, dtype=np.float32)


def _fit(grey: np.ndarray, size: tuple[int, int], what: str) -> np.ndarray:
    w, h = int(size[0]), int(size[1])
    mh, mw = grey.shape[:2]
    if (mw, mh) == (w, h):
        return grey
    if abs((mw / mh) / (w / h) - 1.0) > UserMaskSource.ASPECT_TOLERANCE:
        raise Vid2VidError(
            f"{what} is {mw}x{mh} but the frame is {w}x{h} (aspect {mw / mh:.3f} vs {w / h:.3f}); "
            "give masks with the frame's aspect ratio"
        )
    interp = cv2.INTER_AREA if mw * mh > w * h else cv2.INTER_LINEAR
    return cv2.resize(grey, (w, h), interpolation=interp)


def _open_image(path: Path):
    from PIL import Image, UnidentifiedImageError

    try:
        img = Image.open(path)
        img.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise Vid2VidError(f"cannot read mask image {path}: {type(exc).__name__}; replace it with a PNG or JPEG") from exc
    return img


def _read_grey(path: Path) -> np.ndarray:
    """Image file -> float32 HW 0..1, BT.601 luma (PIL ``L`` conversion)."""
    img = _open_image(path)
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float32)
        return np.clip(arr / 65535.0, 0, 1).astype(np.float32)
    return np.asarray(img.convert("L"), dtype=np.float32) * np.float32(1 / 255)


def _read_alpha(path: Path) -> np.ndarray:
    img = _open_image(path)
    if "A" not in img.getbands() and "transparency" not in img.info:
        raise Vid2VidError(f"{path} has no alpha channel; save it as RGBA PNG or use a grey mask instead")
    return np.asarray(img.convert("RGBA"), dtype=np.float32)[:, :, 3] * np.float32(1 / 255)


# ---------------------------------------------------------------------------------------------- combine


def combine_masks(
    motion: np.ndarray | None = None,
    depth: np.ndarray | None = None,
    user: np.ndarray | None = None,
    colour_key: np.ndarray | None = None,
    *,
    how: str = "multiply",
    colour_key_op: str = "union",
) -> np.ndarray | None:
    """Combine masks (float32 HW 0..1, 1 = may change); ``None`` inputs are left out.

    ``R = motion * depth * user`` (``how="multiply"``) or ``min(motion, depth, user)`` (``how="min"``);
    then ``M = max(R, K)`` (``colour_key_op="union"``) or ``M = R * (1 - K)`` (``"remove"``), where
    ``R`` is all ones if no restricting mask was given. Returns ``None`` if every input is ``None``
    (whole frame may change, as ``RenderRequest.mask = None``).
    """
    if how not in COMBINE:
        raise SettingsError("mask_combine", f"unknown {how!r}; choose one of {', '.join(COMBINE)}")
    if colour_key_op not in COLOUR_KEY_OPS:
        raise SettingsError("colour_key_op", f"unknown {colour_key_op!r}; choose one of {', '.join(COLOUR_KEY_OPS)}")
    given = {k: v for k, v in (("motion", motion), ("depth", depth), ("user", user), ("colour_key", colour_key))
             if v is not None}
    if not given:
        return None
    shapes = {k: v.shape for k, v in given.items()}
    if len(set(shapes.values())) > 1:
        raise Vid2VidError(f"masks differ in size: {shapes}; resize them to the frame size")
    shape = next(iter(shapes.values()))
    restrict = [np.asarray(m, np.float32) for m in (motion, depth, user) if m is not None]
    if restrict:
        r = restrict[0].copy()
        for m in restrict[1:]:
            if how == "multiply":
                r *= m
            else:
                np.minimum(r, m, out=r)
    else:
        r = np.ones(shape, np.float32)
    if colour_key is not None:
        k = np.asarray(colour_key, np.float32)
        r = np.maximum(r, k) if colour_key_op == "union" else r * (1.0 - k)
    return r


def mask_overlay(
    frame: np.ndarray, masks: Mapping[str, np.ndarray | None], *, opacity: float = 0.5, legend: bool = True
) -> np.ndarray:
    """Paint each mask over an RGB uint8 frame in its colour (:data:`OVERLAY_COLOURS`); returns RGB uint8.

    Per mask, in the order given: ``out = out * (1 - a*M) + colour * a*M`` with ``a = opacity``. Names not
    in :data:`OVERLAY_COLOURS` get white. ``None`` masks are skipped (listed as "off" in the legend).
    """
    out = frame.astype(np.float32)
    for name, m in masks.items():
        if m is None:
            continue
        if m.shape != frame.shape[:2]:
            raise Vid2VidError(f"mask {name} {m.shape} and frame {frame.shape[:2]} differ in size")
        w = (np.clip(m, 0, 1) * np.float32(opacity))[:, :, None]
        colour = np.array(OVERLAY_COLOURS.get(name, (255, 255, 255)), np.float32)
        out = out * (1.0 - w) + colour * w
    res = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if legend:
        y = 16
        for name, m in masks.items():
            colour = OVERLAY_COLOURS.get(name, (255, 255, 255))
            text = name if m is not None else f"{name}: off"
            cv2.putText(res, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
            cv2.putText(res, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
            y += 18
    return res
