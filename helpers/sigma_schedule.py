"""Plot sigma schedules (and the img2img tail the WebUI really samples) to a PNG, headless.

Example::

    python helpers/sigma_schedule.py --schedule karras --schedule exponential --steps 20 \\
        --sigma-max 1 --denoise 0.75 -o sched.png

Each schedule's sigmas are also printed, one line each. Exit status 2 on bad settings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib_vid2vid import sigmas as sg  # noqa: E402
from lib_vid2vid.errors import Vid2VidError  # noqa: E402
from lib_vid2vid.plot import plot_schedules  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 800x500") from None
    return w, h


def build_parser() -> argparse.ArgumentParser:
    d = sg.SigmaSettings()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schedule", action="append", choices=[s for s in sg.SCHEDULES if s != "host"],
                   help="schedule to plot; repeat for several (default: karras)")
    p.add_argument("--steps", type=int, default=20, help="sampling steps (default 20)")
    p.add_argument("--sigma-min", type=float, default=d.sigma_min)
    p.add_argument("--sigma-max", type=float, default=d.sigma_max)
    p.add_argument("--rho", type=float, default=d.rho, help="karras / polyexponential curvature")
    p.add_argument("--beta-d", type=float, default=d.beta_d, help="vp schedule")
    p.add_argument("--beta-min", type=float, default=d.beta_min, help="vp schedule")
    p.add_argument("--eps-s", type=float, default=d.eps_s, help="vp schedule")
    p.add_argument("--denoise", type=float, help="also plot the img2img tail for this denoising strength")
    p.add_argument("--fix-steps", action="store_true", help="the host option img2img_fix_steps is on")
    p.add_argument("--sampler", help="host sampler name (decides whether the penultimate sigma is discarded)")
    p.add_argument("--always-discard", action="store_true",
                   help="the host option 'Always discard next-to-last sigma' is on")
    p.add_argument("--log", action="store_true", help="log sigma axis")
    p.add_argument("--align", choices=("start", "end"), default="start",
                   help="line up schedules at their first sigma or at their final zero")
    p.add_argument("--size", type=_size, default=(800, 500), help="WIDTHxHEIGHT (default 800x500)")
    p.add_argument("-o", "--output", type=Path, default=Path("sigma_schedule.png"))
    return p  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from PIL import Image

    try:
        named: dict[str, list[float]] = {}
        for name in args.schedule or ["karras"]:
            settings = sg.SigmaSettings(
                schedule=name, sigma_min=args.sigma_min, sigma_max=args.sigma_max, rho=args.rho,
                beta_d=args.beta_d, beta_min=args.beta_min, eps_s=args.eps_s,
            )  # fmt: skip
            named[name] = sg.full_schedule(settings, args.steps)
            if args.denoise is not None:
                tail = sg.used_sigmas(settings, args.steps, args.denoise, fix_steps=args.fix_steps,
                                      sampler_name=args.sampler, always_discard=args.always_discard)  # fmt: skip
                named[f"{name} img2img (denoise {args.denoise:g})"] = tail
        if args.sampler:
            warning = sg.override_warning(args.sampler, "/".join(args.schedule or ["karras"]))
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
        title = f"{args.steps} steps" + (f", denoise {args.denoise:g}" if args.denoise is not None else "")
        image = plot_schedules(named, args.size, title=title, log_y=args.log, align=args.align)
    except Vid2VidError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for label, values in named.items():
        print(f"{label}: {sg.describe(values)}")
    try:
        Image.fromarray(image).save(args.output)
    except OSError as exc:
        print(f"error: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
