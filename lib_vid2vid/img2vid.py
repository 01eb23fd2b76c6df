"""Image to video with Stable Video Diffusion: ``python -m lib_vid2vid.img2vid IMAGE|FOLDER --model PATH``.

One image, or every image of a folder (``.png .jpg .jpeg .webp .bmp .tif .tiff``, name order), each its own job
folder under ``--output-dir`` with the vid2vid conventions::

    <output>/<date>-<image>-<id>/  manifest.json (settings, image, model, resolved seed, clips, status),
                                   journal.jsonl, job.log, job.lock, frames/svd/000000.png ...,
                                   <image>-svd.mp4

Running the same command again skips the images whose job is done and resumes the others at their next clip
(a job's identity: the image file, the settings that change pixels, the model). Ctrl-C stops after the current
clip, twice at once; the finished clips are kept.

**Chains.** A model makes ``n`` frames per clip (its UNet's ``num_frames``: svd 14, svd_xt 25). ``--frames N``
above ``n`` chains clips: clip 0 is frames ``0 .. n-1`` of the image; clip ``k >= 1`` is made from the last kept
frame ``L`` with seed ``seed + k``, its first frame (SVD's copy of ``L``) is dropped and the other ``n - 1`` are
kept, so ``N`` frames need ``1 + ceil((N - n) / (n - 1))`` clips. With ``colour_coherence`` each clip after the
first is moved, every frame by the same LAB transform, by what makes its first frame's statistics (mean, std
per channel) those of ``L`` (:func:`lib_vid2vid.blend.colour_coherence` with ``own``): the colour drift SVD adds
within a clip stays, the jump a new clip would add at the join goes.

Each clip is a pure function of its conditioning image, the settings and its seed (CPU noise), and the
conditioning image of clip ``k`` is read back from its lossless PNG, so a resumed job's frames equal an
uninterrupted run's byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import params
from .errors import Vid2VidError

STAGE = "svd"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
PIXEL_SETTINGS = ("frames", "steps", "seed", "motion_bucket_id", "fps_id", "cond_aug", "decode_chunk_size",
                  "min_guidance", "max_guidance", "width", "height", "resize", "colour_coherence", "watermark")
"""Settings that change the frames (a job's identity); crf, keep_frames, output_fps and the folder do not."""
BACKGROUND_SETTINGS = ("remove_background", "background_colour")
"""Part of a job's identity too, when remove_background is set (without it, keys stay those of earlier jobs)."""

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


# ------------------------------------------------------------------ plan


def clip_plan(total: int, native: int) -> list[tuple[int, int, int]]:
    """``(first frame index, frames kept, offset into the clip)`` per clip for ``total`` frames from clips of
    ``native`` frames: clip 0 keeps frames ``0 .. min(total, native) - 1`` of itself, every later clip drops its
    first frame (the copy of the frame it is conditioned on)."""
    if native < 2 and total > native:
        raise Vid2VidError(f"this model makes {native} frame per clip: a chain needs at least 2")
    first = min(total, native)
    plan = [(0, first, 0)]
    done = first
    while done < total:
        keep = min(native - 1, total - done)
        plan.append((done, keep, 1))
        done += keep
    return plan


def find_images(inputs: list[str]) -> list[Path]:
    """The image files named, and those of the folders named (their images, name order)."""
    out: list[Path] = []
    for text in inputs:
        p = Path(text).expanduser()
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
        elif p.is_file():
            out.append(p)
        else:
            raise Vid2VidError(f"{p} not found: give an image file or a folder of images")
    return out


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 HWC (alpha dropped), or a one-line error."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError) as exc:
        raise Vid2VidError(f"{path.name} cannot be read as an image ({' '.join(str(exc).split())[:150]}): give a "
                           f"PNG, JPEG or WebP file") from None


def fit_image(rgb: np.ndarray, s: params.Img2VidSettings) -> np.ndarray:
    """The image at SVD's size (RGB uint8 HWC): ``crop_and_resize`` scales it to cover width x height and crops
    the overflow evenly, ``just_resize`` stretches it, ``none`` keeps it, cropped to multiples of 64."""
    import cv2

    h, w = rgb.shape[:2]
    if s.resize == "none":
        W, H = max(64, w - w % 64), max(64, h - h % 64)
        if (W, H) == (w, h):
            return rgb
        if w < 64 or h < 64:
            return cv2.resize(rgb, (W, H), interpolation=cv2.INTER_LANCZOS4)
        y, x = (h - H) // 2, (w - W) // 2
        return np.ascontiguousarray(rgb[y:y + H, x:x + W])
    W, H = s.width, s.height
    if s.resize == "just_resize":
        return cv2.resize(rgb, (W, H), interpolation=cv2.INTER_AREA if w * h > W * H else cv2.INTER_LANCZOS4)
    scale = max(W / w, H / h)
    rw, rh = max(W, round(w * scale)), max(H, round(h * scale))
    big = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LANCZOS4)
    y, x = (rh - H) // 2, (rw - W) // 2
    return np.ascontiguousarray(big[y:y + H, x:x + W])


def prepare_image(image: Path, s: params.Img2VidSettings) -> np.ndarray:
    """The conditioning image of clip 0 (RGB uint8 HWC): read, fitted to SVD's size, and with
    ``remove_background`` its background replaced by ``background_colour`` (lib_vid2vid/background.py)."""
    rgb = fit_image(read_image(image), s)
    if s.remove_background.strip():
        from . import background

        rgb = background.replace_background(rgb, s.remove_background.strip(),
                                            params.parse_colour(s.background_colour, "background_colour"))
    return rgb


def job_key(values: dict, fingerprint: dict, host: dict) -> str:
    names = PIXEL_SETTINGS + (BACKGROUND_SETTINGS if str(values.get("remove_background", "")).strip() else ())
    what = {"settings": {k: values[k] for k in names}, "image": fingerprint, "host": host}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


# ------------------------------------------------------------------ one image


@dataclass
class ImageResult:
    image: Path
    state: str
    """done, skipped (finished by an earlier run), interrupted, failed"""
    job_dir: Path | None = None
    video: Path | None = None
    frames: int = 0
    error: str = ""


def _open_job(image: Path, s: params.Img2VidSettings, generator, total: int, *, new: bool):
    """(job, already done) for this image: its finished job, its unfinished one (locked), or a new one."""
    import random

    from .seeds import resolve_seed
    from .workspace import Job, list_jobs, source_fingerprint

    fp = source_fingerprint(image)
    host = generator.host_identity()
    key = job_key(s.to_dict(), fp, host)
    if not new:
        for job in list_jobs(s.output_dir):
            if job.manifest.get("render_key") != key or job.manifest.get("kind") != "img2vid":
                continue
            if job.status == "done":
                return job, True
            return Job.open_locked(job.root), False
    job = Job.create(s.output_dir, video_name=image.name, settings=s.to_dict(), source={"frames": total},
                     fingerprint=fp, host=host, lock=True,
                     extra={"kind": "img2vid", "render_key": key, "settings_key": key,
                            "resolved_seed": resolve_seed(s.seed, random.SystemRandom()), "native_frames": generator.native_frames})
    return job, False


def run_image(image: Path, generator, s: params.Img2VidSettings, *, new: bool = False, should_stop=None,
              progress=None) -> ImageResult:
    """Make (or resume) the video of one image; see the module docstring."""
    from .blend import colour_coherence, lab_stats
    from .video_writer import encode_frames

    rgb = prepare_image(image, s)
    if s.watermark:
        from . import watermark

        watermark.check_size(rgb.shape[1], rgb.shape[0])
        watermark.embed(rgb, s.watermark)  # fails now, before a job folder exists, if the package is missing
    native = generator.native_frames
    total = s.frames or native
    plan = clip_plan(total, native)
    job, finished = _open_job(image, s, generator, total, new=new)
    if finished:
        return ImageResult(image, "skipped", job.root, Path(job.manifest.get("video", "")), total)
    try:
        job.remove_temp_files()
        job.set_stage_total(STAGE, total)
        job.manifest["clips"] = [{"first": f, "frames": n, "seed": job.manifest["resolved_seed"] + k}
                                 for k, (f, n, _) in enumerate(plan)]
        job.set_status("running")
        seed = int(job.manifest["resolved_seed"])
        done = job.frames_done(STAGE)
        job.truncate_stage(STAGE, done)
        for k, (first, keep, offset) in enumerate(plan):
            if first + keep <= done:
                continue
            cond = rgb if k == 0 else job.read_frame(STAGE, first - 1)
            frames = generator.clip(cond, frames=native if k else min(total, native), steps=s.steps, seed=seed + k,
                                    motion_bucket_id=s.motion_bucket_id, fps_id=s.fps_id, cond_aug=s.cond_aug,
                                    decode_chunk_size=s.decode_chunk_size, min_guidance=s.min_guidance,
                                    max_guidance=s.max_guidance)
            if k and s.colour_coherence:
                own, ref = lab_stats(frames[0]), lab_stats(cond)
                frames = [colour_coherence(f, ref, own=own) for f in frames]
            if s.watermark:
                frames = [watermark.embed(f, s.watermark) for f in frames]
            for j in range(keep):
                index = first + j
                if index >= done:
                    job.write_frame(STAGE, index, frames[offset + j], {"clip": k, "seed": seed + k})
            done = first + keep
            job.log(f"clip {k + 1}/{len(plan)}: frames {first}..{first + keep - 1} (seed {seed + k})")
            if progress is not None:
                progress(done, total)
            if should_stop is not None and should_stop() and done < total:
                job.set_status("interrupted")
                return ImageResult(image, "interrupted", job.root, None, done)
        fps = s.output_fps or (s.fps_id + 1)
        out = job.root / f"{job.root.name.split('-', 2)[-1].rsplit('-', 1)[0]}-svd.mp4"
        encode_frames((job.read_frame(STAGE, i) for i in range(total)), out, fps, crf=s.crf)
        if not s.keep_frames:
            shutil.rmtree(job.root / "frames", ignore_errors=True)
        job.set_status("done", video=str(out), fps=fps)
        return ImageResult(image, "done", job.root, out, total)
    except BaseException as exc:
        if job.status == "running":
            job.set_status("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed", error=str(exc))
        raise
    finally:
        job.close()


def run_images(images: list[Path], generator, s: params.Img2VidSettings, *, new: bool = False, should_stop=None,
               progress=None, on_image=None) -> list[ImageResult]:
    """Each image its own job, in order (:func:`run_image`); a one-line error of one image of several is its
    result ("failed") and the next image runs; with one image it is raised. Stops before the next image when
    ``should_stop()``. ``progress(number, image, done, total)`` after each clip; ``on_image(number, image)``
    before each image."""
    results: list[ImageResult] = []
    for number, image in enumerate(images, 1):
        if should_stop is not None and should_stop():
            break
        if on_image is not None:
            on_image(number, image)
        step = None if progress is None else (lambda done, total, n=number, i=image: progress(n, i, done, total))
        try:
            results.append(run_image(image, generator, s, new=new, should_stop=should_stop, progress=step))
        except Vid2VidError as exc:
            if len(images) == 1:
                raise
            results.append(ImageResult(image, "failed", error=str(exc)))
    return results


# ------------------------------------------------------------------ the WebUI's mode

WEBUI_DIFFUSERS = "diffusers==0.31.0"
"""What the WebUI's Python needs for image to video: Forge (dfdcbab) ships diffusers 0.31.0; A1111 1.10.1 ships
none, and 0.31.0 is the newest that works with its transformers 4.30.2 (0.37.1 imports names transformers 4.30
lacks). Checked with the tiny SVD model in both venvs."""


def webui_missing_packages() -> str | None:
    """One line saying what to install into the WebUI's Python when diffusers or transformers cannot be
    imported there; None when both can (nothing is imported: the modules are only looked up)."""
    import importlib.util

    missing = [name for name in ("diffusers", "transformers") if importlib.util.find_spec(name) is None]
    if not missing:
        return None
    return (f"Image to video needs {' and '.join(missing)} in the WebUI's Python (Forge ships it, A1111 1.10 does "
            f"not): stop the WebUI, run {sys.executable} -m pip install {WEBUI_DIFFUSERS}"
            f"{' transformers' if 'transformers' in missing else ''}, and start it again")


def save_input_image(image, folder: str | Path) -> Path:
    """The img2img tab's image (a PIL image or RGB uint8 HWC) as a PNG named by its content,
    ``<folder>/uploads/img2img-<sha256 of the PNG, 16 hex>.png``, written once: the same image gives the same
    file (and so resumes the same job)."""
    import io

    from PIL import Image

    rgb = image if isinstance(image, np.ndarray) else np.asarray(image.convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    data = buf.getvalue()
    uploads = Path(folder) / "uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    path = uploads / f"img2img-{hashlib.sha256(data).hexdigest()[:16]}.png"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return path


def webui_images(paths: str, init_images: list | None, folder: str | Path) -> list[Path]:
    """The mode's images: those ``paths`` names (an image or a folder, one per line), else the img2img tab's
    image saved by :func:`save_input_image`; a one-line error when there is none."""
    names = [line.strip() for line in (paths or "").splitlines() if line.strip()]
    if names:
        images = find_images(names)
        if not images:
            raise Vid2VidError(f"no images in {', '.join(names)}: name image files ({', '.join(IMAGE_SUFFIXES)}) "
                               f"or a folder that holds some")
        return images
    first = next((im for im in init_images or [] if im is not None), None)
    if first is None:
        raise Vid2VidError("Image to video needs an image: put one in the img2img tab's image box, or name an image "
                           "or a folder of images on the server (Image to video tab)")
    return [save_input_image(first, folder)]


class GeneratorCache:
    """The WebUI keeps one SVD model loaded between generations: the same model path, configuration and device
    reuse it; another one replaces it (the old one is dropped first, so two never share the memory)."""

    def __init__(self, factory=None):
        self._factory = factory
        self._key: tuple | None = None
        self._generator = None

    def get(self, model: str, config: str | None, device: str):
        key = (str(Path(model).expanduser()), str(config or ""), device)
        if self._generator is None or key != self._key:
            self.drop()
            if self._factory is None:
                from .host.diffusers import SVDGenerator

                self._generator = SVDGenerator(model, config=config or None, device=device)
            else:
                self._generator = self._factory(model, config=config or None, device=device)
            self._key = key
        return self._generator

    def drop(self) -> None:
        self._generator, self._key = None, None
        import gc

        gc.collect()


# ------------------------------------------------------------------ CLI


def build_parser() -> argparse.ArgumentParser:
    from .__main__ import _Parser, add_diffusers_arguments

    ap = _Parser(prog="python -m lib_vid2vid.img2vid",
                 description="Make a video from an image (or from every image of a folder) with Stable Video "
                             "Diffusion (svd: 14 frames, svd_xt: 25; more frames chain clips). Local model files "
                             "only. Running the same command again resumes.")
    ap.add_argument("inputs", nargs="+", metavar="IMAGE|FOLDER", help="image files and/or folders of images")
    ap.add_argument("--new", action="store_true", help="start new jobs even for images whose job is done or "
                                                        "unfinished")
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    add_diffusers_arguments(ap, loras=False)
    params.add_cli_arguments(ap, specs=params.IMG2VID_SPECS)
    return ap


def main(argv: list[str] | None = None) -> int:
    from .__main__ import _StopFlag

    ap = build_parser()
    args = ap.parse_args(argv)
    if not args.model:
        ap.error("--model PATH is needed (a Stable Video Diffusion diffusers folder, or a .safetensors file with "
                 "--model-config)")
    stop = _StopFlag()
    if threading.current_thread() is threading.main_thread():
        stop.install()
    try:
        settings = params.img2vid_settings_from_cli(args)
        images = find_images(args.inputs)
        if not images:
            raise Vid2VidError(f"no images in {' '.join(args.inputs)}: give image files ({', '.join(IMAGE_SUFFIXES)}) "
                               f"or a folder that holds some")
        from .host.diffusers import SVDGenerator

        generator = SVDGenerator(args.model, config=args.model_config, device=args.device)
        bars: dict[int, object] = {}

        def progress(number: int, image: Path, done: int, total: int) -> None:
            if args.quiet:
                return
            from tqdm import tqdm

            for other in [n for n in bars if n != number]:
                bars.pop(other).close()
            if number not in bars:
                bars[number] = tqdm(total=total, desc=f"image {number}/{len(images)} {image.name}", unit="frame")
            bars[number].update(done - bars[number].n)

        try:
            results = run_images(images, generator, settings, new=args.new, should_stop=stop, progress=progress)
        finally:
            for bar in bars.values():
                bar.close()
        for r in results:
            where = r.video if r.state in ("done", "skipped") else r.job_dir or r.error
            print(f"{r.state:<11} {r.image.name}: {r.frames} frames -> {where}")
        if any(r.state == "interrupted" for r in results) or len(results) < len(images):
            print("stopped: run the same command again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        return 0 if all(r.state in ("done", "skipped") for r in results) else EXIT_ERROR
    except Vid2VidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        stop.uninstall()


if __name__ == "__main__":
    sys.exit(main())

