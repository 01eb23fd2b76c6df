"""Running a job: settings and a renderer in, a finished (or resumable) job folder out.

:func:`run_job` probes the video, checks the settings, opens or resumes the job folder (locked for the run),
builds the stages (:mod:`.stages`), the export (:mod:`.export`) and the report (:mod:`.report`), and hands
them to the frame loop (:mod:`.loop`: ``Run``, ``Stage``, ``FrameContext``), which knows nothing of them.
Dependencies go one way: this module -> stages/export/postprocess -> loop.

The loop's names are re-exported here, so ``from lib_vid2vid.pipeline import Run, Stage, ...`` keeps working.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import memory, video_probe
from .errors import SettingsError, Vid2VidError
from .loop import (
    FrameContext,
    JobPlan,
    JobResult,
    Progress,
    ProgressFn,
    Run,
    Stage,
    StopFn,
    batch_mean,
    fit_size,
    infotext,
    make_plan,
    output_size,
    output_size_note,
    resolve_seed,
)
from .params import Settings, parse_frame_list
from .renderer import Renderer
from .workspace import Job, find_unfinished, list_jobs, render_key, source_fingerprint

__all__ = ["FrameContext", "JobPlan", "JobResult", "Progress", "ProgressFn", "Run", "Stage", "StopFn", "batch_mean",
           "fit_size", "host_identity", "infotext", "make_plan", "open_or_create_job", "output_size",
           "output_size_note", "resolve_seed", "run_job"]


def host_identity(renderer: Renderer) -> dict[str, Any]:
    """The renderer's host identity (``renderer.host_identity()``, see lib_vid2vid/identity.py) as stored in
    the manifest; {} for renderers that have none."""
    from . import identity

    ask = getattr(renderer, "host_identity", None)
    return identity.normalise(ask() if callable(ask) else None)


def _keep_rate(job: Job, settings: Settings, info: video_probe.VideoInfo) -> tuple[Settings, str]:
    """The settings a job runs with at the source's rate, and a line for the user (or "").

    A job that keeps the source's rate (``fps`` 0) and was planned at another rate than the source reads at now
    (a variable-rate or jittery video before December 2026, when its average rate was taken; see
    ``VideoInfo.jitter``) goes on at the rate it began with, so its frames keep their times (in memory only: the
    stored settings stay those of the command that made it, which resumes it). A new job of a variable-rate video
    is told the rate it gets."""
    if settings.video.fps:
        return settings, ""
    stored = (job.manifest.get("plan") or {}).get("fps")
    if stored and Fraction(stored) != info.fps:
        try:
            kept = settings.replace(fps=float(Fraction(stored)))
        except SettingsError:  # a rate the setting does not take (over 120 fps): the job reads at today's
            return settings, ""
        return kept, (f"This job began at {stored} fps, the rate the video was read at then; it goes on at it (a "
                      f"new job reads it at {float(info.fps):g} fps)")
    if not stored and info.is_vfr:
        how = ("the rate its frames are stamped on: every frame is kept, and one held longer repeats"
               if info.before_grid else "its average rate")
        return settings, (f"The video's frame rate varies: it is made at {float(info.fps):g} fps ({how}); set fps "
                          f"to choose another rate")
    return settings, ""


def open_or_create_job(settings: Settings, info: video_probe.VideoInfo | None, *, resume: str | Path | None = None,
                       new: bool = False, host: dict[str, Any] | None = None) -> tuple[Job, Settings, list[str]]:
    """The job to run, locked for this run (``joblock.JobRunning`` if another run holds it): an explicit
    ``resume`` job, the newest unfinished job with the same input, render settings and host identity (unless
    ``new``), or a fresh one. A resumed job runs with its own stored settings (but ``keyframe_picks``, when given,
    are the ones it takes: candidates are picked after the job stopped). Also returns notes: why an
    unfinished job with the same input and settings was not resumed (its host setup differs)."""
    from . import identity

    host = host or {}
    out_dir = settings.job.output_dir
    if resume:
        job = _claim(Job.resolve(resume, out_dir))
        try:
            if job.status == "done":
                raise Vid2VidError(f"Job {job.root.name} is already finished ({job.manifest.get('video')}): clear "
                                   f"the job to resume to start a new one")
            was = job.manifest.get("host")
            if was is not None and identity.canonical(was) != identity.canonical(host):
                raise Vid2VidError(f"Job {job.root.name} was made with another setup: {identity.describe(was, host)}; "
                                   f"restore that setup to resume it, or start a new job")
            stored = job.stored_settings()
            picks = settings.job.keyframe_picks.strip()
            if (picks and stored.temporal.keyframe_candidates > 1
                    and picks != stored.job.keyframe_picks.strip()):  # picks given with the job to resume win
                stored = stored.replace(keyframe_picks=picks)
                job.manifest["settings"] = stored.to_dict()
        except BaseException:
            job.close()
            raise
        notes = _library_change(job)
        return job, stored, notes
    fp = source_fingerprint(settings.video.input)
    values = settings.to_dict()
    notes: list[str] = []
    if not new:
        job = _claim_unfinished(out_dir, values, fp, host, notes)
        if job is not None:
            stored = job.stored_settings()
            # render settings are equal by the key; the others (export, post-processing, preview, report) may
            # have been corrected since, and the new values win
            from .params import SPEC_BY_NAME
            from .workspace import RENDER_KEY_GROUPS

            merged = Settings.from_dict({k: v for k, v in values.items()
                                         if SPEC_BY_NAME[k].group not in RENDER_KEY_GROUPS
                                         and k not in ("input", "output_dir", "resume_job", "new_job")}, base=stored)
            job.manifest["settings"] = merged.to_dict()
            return job, merged, notes + _library_change(job)
    job = Job.create(out_dir, video_name=Path(settings.video.input).name, settings=values,
                     source=info.to_dict(), fingerprint=fp, host=host, lock=True,
                     extra={"resolved_seed": resolve_seed(settings.sampling.seed),
                            "resolved_variation_seed": resolve_seed(settings.sampling.variation_seed)})
    if job.lock is not None and job.lock.warning:
        job.log(job.lock.warning, warning=True)
    for note in notes:
        job.log(note)
    return job, settings, notes


def _as_planned(plan: JobPlan, stored: dict[str, Any] | None) -> JobPlan:
    """``plan`` with the output size a job stored when it first ran (``manifest["plan"]``): its frames have that
    size, even when the automatic size's rule has changed since. A change is the plan's note."""
    if not stored or (int(stored["width"]), int(stored["height"])) == (plan.width, plan.height):
        return plan
    w, h = int(stored["width"]), int(stored["height"])
    return dataclasses.replace(plan, width=w, height=h, note=f"the job keeps the output size {w}x{h} it was "
                               f"planned with (a new job would get {plan.width}x{plan.height})")


FRAME_LIBRARIES = ("lib_vid2vid", "numpy", "opencv", "av")
"""What makes a job's frames besides its settings and host: float arithmetic differs a little between their builds
(the frame references are kept per numpy / OpenCV stack), so a job resumed under others is not bit-exact."""


def _library_change(job: Job) -> list[str]:
    """A note (also logged as a warning) when a job with frames on disk is resumed under other versions of
    :data:`FRAME_LIBRARIES` than its last run had; the versions of this run are recorded (``versions_last``,
    ``versions`` stays those of the first run)."""
    from .workspace import versions

    now = versions()
    was = job.manifest.get("versions_last") or job.manifest.get("versions") or {}
    job.manifest["versions_last"] = now
    changed = [f"{name} {was[name]} -> {now[name]}" for name in FRAME_LIBRARIES
               if name in was and name in now and was[name] != now[name]]
    if not changed or not any(st.get("done") for st in job.manifest.get("stages", {}).values()):
        return []
    note = (f"resuming {job.root.name} under other libraries than its frames so far ({', '.join(changed)}): the "
            f"frames made from here on may differ in their last bits from those of a run that never stopped; "
            f"start a new job for frames of one build")
    job.log(note, warning=True)
    return [note]


def _claim_unfinished(out_dir: str | Path, values: dict[str, Any], fp: dict[str, Any], host: dict[str, Any],
                      notes: list[str]) -> Job | None:
    """The newest unfinished job with this input, render settings and host identity, locked for this run;
    None if there is none (then ``notes`` gets a line when one differs only in its host identity)."""
    from . import identity

    key = render_key(values, fp, host)
    job = find_unfinished(out_dir, key)
    if job is None:
        other = _unfinished_with_other_host(out_dir, render_key(values, fp))
        if other is not None:
            notes.append(f"not resuming {other.root.name}: {identity.describe(other.manifest.get('host'), host)}")
        return None
    job = _claim(job)
    if job.status == "done" or job.manifest.get("render_key") != key:
        job.close()  # it finished while this run looked: start a new one
        return None
    return job


def _claim(job: Job) -> Job:
    """``job`` locked for this run, read again under the lock (another run may have changed it meanwhile)."""
    return Job.open_locked(job.root)


def _unfinished_with_other_host(output_dir: str | Path, settings_key: str) -> Job | None:
    """The newest unfinished job with the same input and render settings (its host identity differs)."""
    for job in list_jobs(output_dir):
        m = job.manifest
        if job.status != "done" and m.get("settings_key", m.get("render_key")) == settings_key:
            return job
    return None


def run_job(settings: Settings, renderer: Renderer, *, resume: str | Path | None = None, new: bool = False,
            should_stop: StopFn | None = None, progress: ProgressFn | None = None,
            stages: list[Stage] | None = None, notify: Callable[[str], None] | None = None) -> JobResult:
    """Run (or resume) a whole job: probe, plan, frames, then the final video with audio. The job folder
    stays locked until this returns; ``notify`` gets the one-line notes (e.g. why a job was not resumed)
    as soon as the job is chosen, and the result carries them too."""
    from .export import attach_export, finalize_job
    from .postprocess import validate_settings
    from .stages import build_stages, check_schedules

    host = host_identity(renderer)
    info: video_probe.VideoInfo | None = None
    redo = settings.job.redo_keyframes.strip()
    if redo:  # the API's and the CLI's way to render keyframes again (the Jobs tab calls redo_keyframes at once)
        if resume is None:
            raise SettingsError("redo_keyframes", "give the job whose keyframes to render again in resume_job (its "
                                                  "folder name or id)")
        from .keyrun import redo_keyframes

        line = redo_keyframes(Job.resolve(resume, settings.job.output_dir).root,
                              parse_frame_list(redo, "redo_keyframes"))
        if notify is not None:
            notify(line)
    if resume is not None:
        job, settings, notes = open_or_create_job(settings, None, resume=resume, host=host)
    else:
        info = video_probe.probe(settings.video.input)
        # a bad upscaler or ratio, a schedule out of range at some frame, a bad prompt folder: all fail
        # before a job folder exists
        validate_settings(settings)
        check_plan = make_plan(settings, info)
        check_schedules(settings, check_plan.total, float(check_plan.fps))
        job, settings, notes = open_or_create_job(settings, info, new=new, host=host)
    for note in notes:
        if notify is not None:
            notify(note)
    try:
        # a job made before the mirror or the pixel aspect were read keeps the geometry its frames have
        info = video_probe.with_stored_geometry(info or video_probe.probe(settings.video.input),
                                                job.manifest.get("source"))
        settings, line = _keep_rate(job, settings, info)
        if line:
            job.log(line)
            if notify is not None:
                notify(line)
        plan = _as_planned(make_plan(settings, info), job.manifest.get("plan"))
        if plan.note:
            job.log(plan.note)
            if notify is not None:
                notify(plan.note)
        job.manifest["plan"] = {"width": plan.width, "height": plan.height, "fps": f"{plan.fps.numerator}/"
                                f"{plan.fps.denominator}", "start": plan.start, "end": plan.end, "total": plan.total}
        built = stages is None
        if stages is None:
            stages = build_stages(settings, job)
        run_class = Run
        if settings.temporal.keyframe_mode != "off":
            from .keyrun import KeyframeRun

            run_class = KeyframeRun
        run = run_class(job, settings, plan, renderer, stages, should_stop=should_stop, progress=progress,
                        finalize=finalize_job)
        run.notify = notify
        if built:  # each shot of a pass rendered in parallel gets its own stages (scene groups)
            run.stage_factory = lambda: build_stages(settings, job)
        if settings.temporal.reset_at_cuts:
            from .scene_cuts import CutDetector

            run.cut_detector = lambda: CutDetector.of(settings)
        attach_export(run)
        if settings.job.report:
            from .report import StreamingReport

            run.meter = StreamingReport(job)
    except BaseException:
        job.close()  # frees the lock too
        raise
    status = "failed"
    try:
        result = run.execute()
        result.notices = list(notes) + run.notices
        status = result.status
        if status == "done" and run.meter is not None:
            from .report import format_report

            try:
                result.report = run.meter.finish()
                job.log(f"report: {format_report(result.report)}")
            except Vid2VidError as exc:
                job.log(f"no report: {exc}", warning=True)
        return result
    finally:
        if status != "done":
            run.exporter.abort()  # type: ignore[attr-defined]
        job.close()
        memory.give_back()  # in the WebUI's process, RAM the models need
