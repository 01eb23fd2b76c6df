"""Headless CLI: ``python -m lib_vid2vid INPUT --prompt "..." [options]``.

Several videos, a folder or a glob pattern run a batch (lib_vid2vid/batch.py): each video its own job, a
summary table at the end and in ``<output-dir>/batch.json``; the same command again skips finished videos
and resumes the others.

By default every frame is rendered by a running WebUI over its HTTP API (start it with ``--api``).
``--renderer proxy`` renders with the built-in proxy stylisation instead (no model, no WebUI): for trying
settings and the pipeline. Re-running the same command resumes an unfinished job.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import threading

from . import __version__, params
from .errors import Vid2VidError

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130
EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (the usage of ~100 flags would bury them), exit status 2."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"error: {message} (--help lists the options)\n")


def _seconds(text: str) -> float:
    """argparse ``type`` of --timeout: a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text!r}: give a number of seconds above 0, e.g. 600")
    return value


PRESETS: dict[str, dict] = {
    # The SDXL temporal script (img2img of every frame on diffusers): the source's luminance merged with the
    # previous output (its "temporal strength" is init_strength), a colour-key mask whose keyed pixels are
    # repainted and filled with gaussian noise first (colour_key_fill telea: its "inpaint" fill), fixed seed.
    # Long side 1024 px unless --width/--height say otherwise; --output-format png --png-digits 16 names the frames
    # as it did.
    "sdxl_temporal": {"renderer": "diffusers", "long_side": 1024,
                      "settings": {**params.STRATEGIES["temporal_merge"], "colour_key": True,
                                   "colour_key_op": "union", "colour_key_fill": "noise"}},
}
"""Named CLI presets: a renderer, a default long side, and settings (flags given on the command line win)."""


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(
        prog="python -m lib_vid2vid",
        description="Restyle a video with Stable Diffusion img2img, frame by frame, with little flicker. "
                    "Re-running the same command resumes an unfinished job.",
    )
    ap.add_argument("inputs", nargs="*", metavar="INPUT",
                    help="the source video; several videos, a folder or a glob pattern run a batch (each video "
                         "its own job, its own size with the same long side)")
    ap.add_argument("--version", action="version", version=f"lib_vid2vid {__version__}")
    run = ap.add_argument_group("Run")
    run.add_argument("--strategy", choices=(*params.STRATEGIES, *params.STRATEGY_ALIASES), default=None,
                     help="start from a named preset (keyframes_adaptive, also called recommended, is the default; "
                          "every_frame renders every frame); flags given after it win")
    run.add_argument("--preset", choices=tuple(PRESETS), default=None,
                     help="sdxl_temporal: the SDXL temporal script's job (the diffusers renderer, colour-key mask "
                          "with gaussian-noise fill, temporal merge, long side 1024); flags given win")
    run.add_argument("--renderer", choices=("api", "proxy", "diffusers"), default=None,
                     help="api: a running WebUI renders each frame (the default without a preset); diffusers: a "
                          "local SD 1.x/2.x or "
                          "SDXL model through the diffusers library, no WebUI (--model); proxy: built-in "
                          "model-free stylisation, for trying the pipeline")
    run.add_argument("--api-url", default=None, help="WebUI address (default http://127.0.0.1:7860)")
    run.add_argument("--backend", metavar="URL", action="append", default=[],
                     help="a WebUI API to render on; repeat for several: frames that do not read the previous "
                          "output render in parallel, and a backend that fails is taken out (its frames go to "
                          "the others); every backend must have the same model and settings")
    run.add_argument("--engine", choices=("threads", "ray"), default="threads",
                     help="with --backend: threads (in this process) or ray (one Ray actor per backend, needs "
                          "pip install .[ray]); with --renderer diffusers: ray runs Ray workers (as "
                          "--ray-address local)")
    run.add_argument("--ray-address", metavar="ADDR", default=None,
                     help="with --engine ray: join this Ray cluster (ray://host:10001, host:6379, or auto: the "
                          "one ray start made here) instead of starting a local Ray instance (local); with "
                          "--renderer diffusers: render on Ray workers there, one per GPU, each loading --model "
                          "once (needs pip install .[ray])")
    run.add_argument("--workers", type=int, metavar="N", default=None,
                     help="with --renderer diffusers on Ray: how many workers (default: one per GPU of the Ray "
                          "cluster; without a GPU, or with --device cpu, 1 CPU worker)")
    run.add_argument("--submit", action="store_true",
                     help="send the whole job to the WebUI in one request (its vid2vid Script runs it there and "
                          "keeps the job in its own output folder) instead of one request per frame")
    run.add_argument("--upload", action="store_true",
                     help="with --submit: send the video's bytes (base64) instead of its path, for a WebUI on "
                          "another machine")
    run.add_argument("--timeout", type=_seconds, default=600.0, help="seconds to wait for one frame (default 600)")
    run.add_argument("--resume", metavar="JOB", help="resume this job (folder, name or id) with its own settings; with "
                                                     "--submit, a job in the WebUI's output folder (its name or id)")
    run.add_argument("--redo-keyframes", metavar="FRAMES", default=None,
                     help="with --resume (and --submit): render these keyframes of the job again with another "
                          "seed (e.g. the keyframes of a scene problem detection flagged: '12, 30'), then resume "
                          "it; the frames made from them are made again, every frame before keeps its bytes")
    run.add_argument("--new", action="store_true", help="start a new job even if an unfinished one matches "
                                                        "(also when that one is running: otherwise an error)")
    run.add_argument("--list-jobs", action="store_true", help="list the jobs in the output folder and exit")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--dry-run", action="store_true",
                     help="render nothing: print the frames the job would make and, with keyframes on, which "
                          "frames are keyframes (and why)")
    run.add_argument("--export-keyframes", metavar="DIR", default=None,
                     help="render nothing: write the source frames the keyframe strategy would render to "
                          "DIR/<frame:06d>.png; restyle them, then run with --keyframe-folder DIR")
    add_diffusers_arguments(ap)
    many = ap.add_argument_group("Batch (several videos, a folder or a glob pattern)")
    many.add_argument("--recursive", action="store_true", help="look for videos in sub-folders too")
    many.add_argument("--glob", default="*", metavar="PATTERN",
                      help="only files of a folder whose name matches, e.g. '*.mp4' (default: every file that "
                           "is a video by its content)")
    dbg = ap.add_argument_group("Single-frame debug (renders one frame into <output-dir>/debug, no job)")
    pick = dbg.add_mutually_exclusive_group()
    pick.add_argument("--debug-frame", type=int, metavar="N", default=None,
                      help="render only frame N of the processed range (0-based) with these settings")
    pick.add_argument("--debug-time", type=float, metavar="S", default=None,
                      help="render only the frame shown S seconds into the processed range")
    dbg.add_argument("--sweep", metavar="SWEEP", default=None,
                     help="render the debug frame (frame 0 if none is given) once per setting value, as one "
                          "labelled grid, e.g. 'sigma_schedule=karras,exponential' or "
                          "'sigma_max=0.5,1,2 x denoise=0.3,0.5' (rows x columns)")
    params.add_cli_arguments(ap, skip=("input",))
    return ap


def add_diffusers_arguments(ap: argparse.ArgumentParser, *, loras: bool = True) -> None:
    """The flags of the diffusers renderer (``--renderer diffusers``; also used by lib_vid2vid.img2vid)."""
    grp = ap.add_argument_group("diffusers renderer (local model files only, nothing is downloaded)")
    grp.add_argument("--model", metavar="PATH", default=None,
                     help="a diffusers model folder (model_index.json, unet/, vae/ ...) or a single-file "
                          ".safetensors checkpoint")
    grp.add_argument("--model-config", metavar="FOLDER", default=None,
                     help="for a single-file checkpoint: a diffusers folder of the same model type holding its "
                          "configuration (model_index.json, */config.json, tokenizer/; weights not needed); "
                          "default: the local Hugging Face cache")
    if loras:
        grp.add_argument("--lora", metavar="PATH[:WEIGHT]", action="append", default=[],
                         help="a LoRA .safetensors file, optionally with its weight (default 1); repeat for more")
    grp.add_argument("--device", default="auto",
                     help="auto (CUDA when there is one, else the CPU), cpu, cuda or cuda:N; float16 on CUDA, "
                          "float32 on the CPU")


def _renders_nothing(args: argparse.Namespace, settings: params.Settings) -> bool:
    """A job whose keyframes come from a folder and whose unseen pixels need no render, with no renderer asked for:
    it runs without a WebUI (with ``--resume``, the job's own settings decide)."""
    if args.renderer_asked or args.backend or args.api_url:
        return False
    if args.resume:
        from .workspace import Job

        settings = Job.resolve(args.resume, settings.job.output_dir).stored_settings()
    t = settings.temporal
    return t.keyframe_mode != "off" and bool(t.keyframe_folder.strip()) and t.keyframe_fill != "render"


def _make_renderer(args: argparse.Namespace):
    if args.renderer == "diffusers":
        if not args.model:
            raise Vid2VidError("--renderer diffusers needs --model PATH (a diffusers folder or a .safetensors "
                               "checkpoint)")
        from .host.diffusers import DiffusersRenderer, parse_lora

        loras = [parse_lora(x) for x in args.lora]
        if args.ray_address or args.engine == "ray" or args.workers is not None:
            if args.backend:
                raise Vid2VidError("--backend names WebUI APIs; with --renderer diffusers the Ray workers render "
                                   "(--ray-address, --workers): leave --backend out")
            from .dispatch_ray import diffusers_dispatcher

            workers = diffusers_dispatcher(args.model, config=args.model_config, loras=loras, device=args.device,
                                           ray_address=args.ray_address or "local", workers=args.workers)
            print(workers.started, file=sys.stderr)
            return workers
        return DiffusersRenderer(args.model, config=args.model_config, device=args.device, loras=loras)
    if args.renderer == "proxy":
        from .proxy import ProxyRenderer

        return ProxyRenderer()
    if args.backend:
        if args.api_url:
            raise Vid2VidError("--api-url and --backend both given: give every WebUI as --backend URL")
        from .dispatch import webui_dispatcher
        from .ray_env import cluster_address

        return webui_dispatcher(args.backend, timeout=args.timeout, engine=args.engine,
                                ray_address=cluster_address(args.ray_address))
    if args.engine != "threads" or args.ray_address or args.workers is not None:
        raise Vid2VidError("--engine ray and --ray-address need --backend URL (one per WebUI), or --renderer "
                           "diffusers --model PATH (Ray workers); --workers needs --renderer diffusers")
    from .host.webui_api import DEFAULT_URL, WebUIApiRenderer

    renderer = WebUIApiRenderer(args.api_url or DEFAULT_URL, timeout=args.timeout)
    renderer.check()
    return renderer


def _close(renderer) -> None:
    """Let go of what the renderer holds (several backends: their threads; Ray workers: their GPUs)."""
    close = getattr(renderer, "close", None)
    if callable(close):
        close()


def _backend_stats(renderer) -> None:
    """With several backends: frames and frames/s (while rendering) of each, on stderr."""
    stats = getattr(renderer, "stats", None)
    if not callable(stats) or len(stats()) < 2 or not any(frames for _, frames, _, _ in stats()):
        return
    for name, frames, rate, alive in stats():
        print(f"backend {name}: {frames} frames, {rate:.2f} frames/s{'' if alive else ' (taken out)'}",
              file=sys.stderr)


def progress_note(p, renderer) -> str:
    """The progress bar's note: the job's ETA (``Progress.eta_s``: all passes left) and, with several backends,
    each one's frames/s while rendering ("-" once taken out), e.g. ``ETA 1:02 | 127.0.0.1:7860 1.9/s, ...``."""
    from .loop import format_seconds

    parts = [] if p.eta_s is None else [f"ETA {format_seconds(p.eta_s)}"]
    stats = getattr(renderer, "stats", None)
    rows = stats() if callable(stats) else []
    if len(rows) > 1:
        short = [name.split("://", 1)[-1] for name, _, _, _ in rows]
        parts.append(", ".join(f"{n} {rate:.1f}/s" if alive else f"{n} -"
                               for n, (_, _, rate, alive) in zip(short, rows)))
    return " | ".join(parts)


def _list_jobs(output_dir: str) -> int:
    from .workspace import list_jobs

    jobs = list_jobs(output_dir)
    if not jobs:
        print(f"no jobs in {output_dir}")
    for job in jobs:
        m = job.manifest
        stages = ", ".join(f"{k} {v.get('done', 0)}/{v.get('total', '?')}" for k, v in m.get("stages", {}).items())
        print(f"{job.root.name}  {m.get('status')}  {stages}")
    return 0


class _StopFlag:
    """First Ctrl-C: stop after the current frame. Second: stop now."""

    def __init__(self):
        self.event = threading.Event()

    def __call__(self) -> bool:
        return self.event.is_set()

    def install(self) -> None:
        self.previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):
            if self.event.is_set():
                raise KeyboardInterrupt
            self.event.set()
            print("\nstopping after this frame (Ctrl-C again to stop at once)", file=sys.stderr)

        signal.signal(signal.SIGINT, handler)

    def uninstall(self) -> None:
        previous = getattr(self, "previous", None)
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


_TAKEN_WITH_RESUME = ("keyframe_picks", "output_dir")
"""Settings a job resumed by name takes from the command (the picks of its candidates; where to find it)."""


def _ignored_with_resume(args: argparse.Namespace) -> list[str]:
    """The setting flags given with ``--resume JOB`` that the job does not take (it runs with its stored
    settings, :func:`lib_vid2vid.pipeline.open_or_create_job`)."""
    return [spec.flag for spec in params.SPECS
            if getattr(args, spec.name, None) is not None and spec.name not in _TAKEN_WITH_RESUME]


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_intermixed_args(argv)  # videos may come after the flags, or between them
    try:
        base = params.Settings()
        preset = PRESETS.get(args.preset or "", {})
        if preset:
            base = base.replace(**preset["settings"])
        if args.strategy:
            base = base.replace(**params.strategy(args.strategy))
        args.renderer_asked = bool(args.renderer or preset.get("renderer"))
        args.renderer = args.renderer or preset.get("renderer", "api")
        many = _is_batch(args)
        if args.inputs and not many:
            base = base.replace(input=args.inputs[0])
        settings = params.settings_from_cli(args, base=base)
        if preset.get("long_side") and not (settings.video.width or settings.video.height) and args.inputs:
            settings = _long_side(settings, preset["long_side"], None if many else args.inputs[0])
        if args.list_jobs:
            return _list_jobs(settings.job.output_dir)
        if not args.inputs and not args.resume:
            ap.error("give the input video (or --resume JOB)")
        if args.renderer == "diffusers" and not args.model and not args.submit:
            ap.error("--renderer diffusers needs --model PATH (a diffusers folder or a .safetensors checkpoint)")
        debug = args.debug_frame is not None or args.debug_time is not None or args.sweep is not None
        if many:
            given = [flag for flag, on in (("--resume", args.resume),
                                           ("--debug-frame/--debug-time/--sweep", debug),
                                           ("--dry-run/--export-keyframes", args.dry_run or args.export_keyframes))
                     if on]
            if given:
                ap.error(f"{given[0]} takes one video, not a batch: give a single video file")
            return _batch(args, settings)
        if debug and args.resume:
            ap.error("--debug-frame/--debug-time/--sweep render from the input video's settings, not with --resume")
        if args.dry_run or args.export_keyframes:
            return _dry_run(args, settings)
        if args.redo_keyframes is not None and not args.resume:  # run_job renders them again
            ap.error("--redo-keyframes takes the job to resume (--resume JOB)")
        if args.submit and args.resume and args.upload:
            ap.error("--upload sends a video; --submit --resume JOB resumes a job on the WebUI's machine with its own "
                     "video: leave out --upload")
        if args.resume:
            ignored = _ignored_with_resume(args)
            if ignored:
                print(f"note: --resume goes on with the job's own settings; ignored: {', '.join(ignored)} (start a "
                      f"new job to change them)", file=sys.stderr)
        if args.submit:
            return _submit(args, settings)
        if not debug and _renders_nothing(args, settings):  # keyframes from a folder: no WebUI needed
            from .renderer import NoRenderer

            renderer = NoRenderer()
        else:
            renderer = _make_renderer(args)
        try:
            if debug:
                return _debug(args, settings, renderer)
            return _run(args, settings, renderer)
        finally:
            _close(renderer)
    except Vid2VidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("stopped: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


def _long_side(settings: params.Settings, side: int, single: str | None) -> params.Settings:
    """``side`` px on the long side: a batch's width (its long side), or the one video's longer dimension."""
    if single is None:
        return settings.replace(width=side)
    from .video_probe import probe

    info = probe(single)
    return settings.replace(**({"width": side} if info.width >= info.height else {"height": side}))


def _is_batch(args: argparse.Namespace) -> bool:
    from .batch import is_batch

    return is_batch(args.inputs) or (len(args.inputs) == 1 and args.recursive)


def _dry_run(args: argparse.Namespace, settings: params.Settings) -> int:
    """Print what a job would render (no renderer, no job folder); --export-keyframes also writes the keyframes'
    source frames."""
    from . import video
    from .loop import make_plan

    if args.resume:
        raise Vid2VidError("--dry-run and --export-keyframes take the input video's settings, not --resume")
    from .postprocess import validate_settings
    from .stages import check_schedules

    plan = make_plan(settings, video.probe(settings.video.input))
    validate_settings(settings)  # what a run refuses before it makes a job folder, the dry run refuses too
    check_schedules(settings, plan.total, float(plan.fps))
    print(f"{plan.total} frames at {plan.width}x{plan.height}, {float(plan.fps):g} fps")
    if plan.note:
        print(plan.note)
    if settings.temporal.keyframe_mode == "off":
        if args.export_keyframes:
            raise Vid2VidError("--export-keyframes needs keyframes: add --keyframe-mode interval (or adaptive), "
                               "or --strategy keyframes")
        print(f"keyframes off: every frame is rendered ({plan.total * settings.temporal.loopback_passes} renders)")
        return 0
    from . import keyrun

    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=plan.total, desc="choosing keyframes", unit="frame", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.update(done - bar.n)

    try:
        if args.export_keyframes:
            kplan, paths = keyrun.export_keyframes(settings, args.export_keyframes, progress=progress)
        else:
            kplan, paths = keyrun.choose_for_settings(settings, progress=progress), []
    finally:
        if bar is not None:
            bar.close()
    print(kplan.describe())
    t = settings.temporal
    flows = "half-size flows, keyframe_flow fast" if t.keyframe_flow == "fast" else "full-size flows"
    unseen = {"styled": "the source in the style around them", "source": "the source",
              "render": "a light render of each frame that has them (counted when the job runs)"}[t.keyframe_fill]
    share = f"{len(kplan.frames)} keyframes of {plan.total} frames ({len(kplan.frames) / plan.total:.0%})"
    if t.keyframe_folder.strip():
        how = "harmonized: each takes the fine detail of the one before" if t.keyframe_folder_harmonize else "as given"
        head = f"renders nothing: {share} read from {t.keyframe_folder.strip()} ({how})"
    else:
        head = f"renders: {share}"
    print(f"{head}; the others are carried along the source's motion ({flows}); pixels no keyframe sees: {unseen}")
    if paths:
        print(f"exported {len(paths)} keyframes to {args.export_keyframes}: restyle them (same names, same size), "
              f"then run with --keyframe-folder {args.export_keyframes} (and --keyframe-folder-harmonize if each was "
              f"restyled on its own: their fine detail then travels with the picture instead of cross-fading)")
    return 0


def _batch(args: argparse.Namespace, settings: params.Settings) -> int:
    """Each video its own job; the summary table printed and written to <output-dir>/batch.json."""
    from . import batch

    videos = batch.find_videos(args.inputs, recursive=args.recursive, pattern=args.glob,
                               exclude=[settings.job.output_dir])
    if not videos:
        raise Vid2VidError(f"No videos found in {' '.join(args.inputs)}: give video files or a folder that holds "
                           f"videos (--recursive for sub-folders, --glob to pick names)")
    if args.submit:
        return _submit_batch(args, settings, videos)
    renderer = _make_renderer(args)
    stop = _StopFlag()
    if threading.current_thread() is threading.main_thread():
        stop.install()
    bar = None

    def progress(p: batch.BatchProgress) -> None:
        nonlocal bar
        if args.quiet:
            return
        from tqdm import tqdm

        desc = f"video {p.number}/{p.count} {p.frame.stage}"
        if bar is None or bar.desc != desc:
            if bar is not None:
                bar.close()
            bar = tqdm(total=p.frame.total, initial=p.frame.done - 1, desc=desc, unit="frame", dynamic_ncols=True)
        bar.update(p.frame.done - bar.n)

    try:
        result = batch.run_batch(settings, renderer, videos, new=args.new, should_stop=stop, progress=progress,
                                 notify=lambda line: print(line, file=sys.stderr))
    finally:
        if bar is not None:
            bar.close()
        stop.uninstall()
        _close(renderer)
    print(batch.summary_table(result.items))
    print(f"batch: {result.path}")
    if result.status == "interrupted":
        print("stopped: run the same command again to resume the batch", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0 if result.status == "done" else EXIT_ERROR


def _submit_batch(args: argparse.Namespace, settings: params.Settings, videos: list) -> int:
    """The whole batch in one request to the WebUI's vid2vid Script; its summary table printed."""
    from . import batch
    from .host.webui_api import DEFAULT_URL, WebUIApiRenderer

    client = WebUIApiRenderer(args.api_url or DEFAULT_URL, timeout=args.timeout)
    client.check()
    if args.new:
        settings = settings.replace(new_job=True)
    result = client.submit_batch(settings, videos, upload=args.upload)
    print(batch.summary_table(batch.items_from_reply(result.get("videos") or [])))
    if result.get("batch"):
        print(f"batch: {result['batch']} (on the WebUI's machine)")
    status = result.get("status")
    return 0 if status == "done" else EXIT_INTERRUPTED if status == "interrupted" else EXIT_ERROR


def _submit(args: argparse.Namespace, settings: params.Settings) -> int:
    from .host.webui_api import DEFAULT_URL, WebUIApiRenderer

    client = WebUIApiRenderer(args.api_url or DEFAULT_URL, timeout=args.timeout)
    client.check()
    if args.resume:  # a job in the WebUI's output folder: its own video and settings (the Script finds them)
        result = client.resume_job(args.resume, redo_keyframes=args.redo_keyframes or "")
    else:
        if args.new:
            settings = settings.replace(new_job=True)
        result = client.submit_job(settings, upload=args.upload)
    print(result.get("info", ""))
    status = result.get("status")
    return 0 if status == "done" else EXIT_INTERRUPTED if status == "interrupted" else EXIT_ERROR


def _run(args: argparse.Namespace, settings: params.Settings, renderer) -> int:
    from .pipeline import Progress, run_job

    stop = _StopFlag()
    if threading.current_thread() is threading.main_thread():
        stop.install()
    bar = None

    def progress(p: Progress) -> None:
        nonlocal bar
        if args.quiet:
            return
        from tqdm import tqdm

        if bar is None or bar.desc != p.stage:
            if bar is not None:
                bar.close()
            bar = tqdm(total=p.total, initial=p.done - 1, desc=p.stage, unit="frame", dynamic_ncols=True)
        bar.set_postfix_str(progress_note(p, renderer), refresh=False)
        bar.update(p.done - bar.n)

    try:
        result = run_job(settings, renderer, resume=args.resume, new=args.new, should_stop=stop,
                         progress=progress, notify=lambda line: print(line, file=sys.stderr))
    finally:
        if bar is not None:
            bar.close()
        stop.uninstall()
        _backend_stats(renderer)
    if result.status == "interrupted":
        print(result.message, file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"done: {result.frames_done} frames -> {result.video_path}")
    print(f"job folder: {result.job_dir}")
    if result.report:
        from .report import format_report

        print(f"report: {format_report(result.report)}")
    return 0


def _debug(args: argparse.Namespace, settings: params.Settings, renderer) -> int:
    """Single-frame debug render or sweep into <output_dir>/debug; prints the files and the sigmas used."""
    from pathlib import Path

    from . import debug_render, debug_sweep

    out_dir = Path(settings.job.output_dir) / debug_render.DEBUG_DIR
    frame = args.debug_frame
    if args.sweep is not None:
        if frame is None and args.debug_time is None:
            frame = 0
        grid, plot, cells = debug_sweep.run_sweep(settings, renderer, args.sweep, frame=frame, time_s=args.debug_time)
        first = cells[0].result
        grid_path, plot_path = debug_sweep.save_sweep(grid, plot, first.frame, out_dir)
        print(f"sweep of frame {first.frame} ({first.time_s:.3f} s), {len(cells)} cells, seed "
              f"{first.settings.sampling.seed}")
        for cell in cells:
            print(f"  {cell.name}: sigmas {cell.result.sigmas_text}")
        warnings = {c.result.warning for c in cells if c.result.warning}
        for text in sorted(warnings):
            print(f"warning: {text}", file=sys.stderr)
        print(f"grid: {grid_path}")
        print(f"sigmas plot: {plot_path}")
        return 0
    result = debug_render.render_single_frame(settings, renderer, frame=frame, time_s=args.debug_time,
                                             out_dir=out_dir)
    print(f"frame {result.frame} ({result.time_s:.3f} s), seed {result.seed}: {result.note}")
    print(f"sigmas used: {result.sigmas_text}")
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    for kind, path in result.paths.items():
        print(f"{kind}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
