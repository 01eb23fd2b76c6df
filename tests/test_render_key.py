"""The render key across updates (lib_vid2vid/workspace.py ``render_key``, params ``Spec.neutral``): a setting
added by an update stays out of the key while it has its neutral value, so unfinished jobs from before the
update resume; no existing job's key changes."""

from __future__ import annotations

import pytest

from lib_vid2vid import params
from lib_vid2vid.params import NO_NEUTRAL, SPECS, Settings, Spec
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import RENDER_KEY_GROUPS, Job, render_key
from tests.doubles import StopAfter

KEYED_BEFORE_NEUTRAL = frozenset("""
input fps start end max_frames width height resize_mode controlnet_inputs prompt negative_prompt sampler scheduler
steps cfg_scale denoise seed batch_size batch_count seed_mode variation_seed variation_strength sigma_schedule
sigma_min sigma_max rho noise_mode noise_strength fdc_mode motion_mask motion_low_cut motion_high_ext motion_soft
mask_usage mask_combine colour_key colour_key_target colour_key_range colour_key_op colour_key_fill colour_key_noise
colour_key_radius user_mask_kind user_mask_path user_mask_threshold user_mask_invert user_mask_blur depth_mask
depth_model depth_weights depth_low_cut depth_source init_mode init_strength temporal_weights temporal_threshold
temporal_softness merge_luma_share flow_occlusion loopback_passes loopback_alpha save_each_pass colour_coherence
denoise_schedule steps_schedule cfg_schedule seed_schedule variation_strength_schedule loopback_alpha_schedule
temporal_weights_schedule prompt_schedule prompt_folder keyframe_mode keyframe_interval keyframe_min_gap
keyframe_max_gap keyframe_threshold keyframe_colour_weight keyframe_motion_weight keyframe_add keyframe_remove
keyframe_fill keyframe_fill_min keyframe_mask_only keyframe_candidates keyframe_grid keyframe_problem_ratio
keyframe_folder
""".split())
"""The render settings that existed when the neutral rule came in (2026-12-06): always in the key."""

DEFAULTS_THEN = {"keyframe_fill": "source", "keyframe_min_gap": 4, "keyframe_max_gap": 8, "colour_follow_source": False,
                 "keyframe_mode": "off"}
"""Defaults of commit 327452d that have changed since (the values its jobs stored)."""

FP = {"path": "/data/clip.mp4", "size": 123456, "mtime": 1764979200}
HOST = {"checkpoint": "v1-5-pruned-emaonly.safetensors [6ce0161689]", "vae": "auto"}


def _add_setting(monkeypatch, *, default: float = 0.0, neutral=0.0, name: str = "update_strength") -> Spec:
    """Simulate an update that adds a float render setting (group temporal, 0..1) to every settings table."""
    spec = Spec(name=name, group="temporal", type=float, default=default, help="A setting an update added.",
                min=0.0, max=1.0, tab=params.TemporalSettings.TAB, neutral=neutral)
    specs = [*params.SPECS, spec]
    monkeypatch.setattr(params, "SPECS", specs)
    monkeypatch.setattr(params, "SPEC_BY_NAME", {s.name: s for s in specs})
    monkeypatch.setattr(params.TemporalSettings, name, default, raising=False)
    return spec


@pytest.mark.parametrize("case,values,key,host_key", [
    ("default", {}, "3db504259fa83f60", "25fbc92dc94d0d9c"),
    ("flow", dict(init_mode="flow_warp", denoise=0.3, fdc_mode="mean_std", motion_mask=True, seed=11),
     "2427d2d24b4837ad", "580a165327a63feb"),
    ("keyframes", dict(keyframe_mode="adaptive", keyframe_fill="render", width=512, height=288, fps=12.0),
     "69d96e21185c7bd1", "4743cf93a8c1156d"),
    ("export only", dict(crf=30, keep_audio=False), "3db504259fa83f60", "25fbc92dc94d0d9c"),
])
def test_keys_are_those_jobs_were_written_with(case, values, key, host_key):
    """The keys of commit 327452d (before neutral values existed): every job folder on disk keeps its key. A job
    stores every setting, so a default changed since (:data:`DEFAULTS_THEN`) does not change its key."""
    s = Settings().replace(**{**DEFAULTS_THEN, **values}).to_dict()
    assert (render_key(s, FP), render_key(s, FP, HOST)) == (key, host_key)


def test_every_render_setting_added_since_has_a_valid_neutral():
    """A new render setting without a neutral would change the key of every job (none would resume after the
    update): give it ``neutral=`` the value that does what vid2vid did before it existed."""
    for spec in SPECS:
        if spec.group not in RENDER_KEY_GROUPS:
            continue
        if spec.name in KEYED_BEFORE_NEUTRAL:
            assert spec.neutral is NO_NEUTRAL, f"{spec.name}: a neutral now would change existing jobs' keys"
            continue
        assert spec.neutral is not NO_NEUTRAL, f"{spec.name} is a new render setting: give it neutral="
        assert params.coerce(spec, spec.neutral) == spec.neutral, spec.name
        params.check_range(spec, spec.neutral)


def test_a_setting_at_its_neutral_value_is_not_in_the_key(monkeypatch):
    before = Settings().replace(denoise=0.3).to_dict()
    old_key = render_key(before, FP, HOST)
    _add_setting(monkeypatch)
    now = Settings().replace(denoise=0.3)
    assert now.to_dict()["update_strength"] == 0.0
    assert render_key(now.to_dict(), FP, HOST) == old_key
    assert render_key(now.replace(update_strength=0.5).to_dict(), FP, HOST) != old_key
    assert render_key(before, FP, HOST) == old_key  # an old manifest's settings lack it: neutral


def test_a_settings_without_a_neutral_is_always_in_the_key(monkeypatch):
    old_key = render_key(Settings().to_dict(), FP)
    _add_setting(monkeypatch, neutral=NO_NEUTRAL)
    assert render_key(Settings().to_dict(), FP) != old_key


def test_stored_settings_of_an_older_job_read_a_new_setting_as_its_neutral(monkeypatch):
    stored = Settings().replace(denoise=0.3).to_dict()
    _add_setting(monkeypatch, default=0.7, neutral=0.0)  # on by default for new jobs
    assert Settings().get("update_strength") == 0.7
    old = Settings.from_stored(stored)
    assert old.get("update_strength") == 0.0 and old.sampling.denoise == 0.3
    assert Settings.from_stored({**stored, "update_strength": 0.4}).get("update_strength") == 0.4


def test_an_unfinished_job_resumes_after_an_update_adds_a_setting(clip, tmp_path, monkeypatch):
    """A job folder written with the current key format, interrupted; the update adds a render setting whose
    default is its neutral value; running the same settings again resumes that folder (not a new job) and
    finishes it with the frames of an uninterrupted run."""
    def settings(out):
        return Settings().replace(input=str(clip), output_dir=str(out), width=96, height=64, max_frames=8,
                                  seed=5, denoise=0.5, report=False, keyframe_mode="off")  # stops after frame 3

    full = run_job(settings(tmp_path / "full"), ProxyRenderer())
    stop = StopAfter(3)
    part = run_job(settings(tmp_path / "out"), ProxyRenderer(), should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted" and part.frames_done == 3
    assert "update_strength" not in Job.open(part.job_dir).manifest["settings"]

    _add_setting(monkeypatch)
    resumed = run_job(settings(tmp_path / "out"), ProxyRenderer())
    assert resumed.status == "done" and resumed.job_dir == part.job_dir
    assert len(list((tmp_path / "out").iterdir())) == 1
    frames = [p.read_bytes() for p in sorted((resumed.job_dir / "frames" / "pass1").glob("*.png"))]
    assert frames == [p.read_bytes() for p in sorted((full.job_dir / "frames" / "pass1").glob("*.png"))]

    # the new setting away from its neutral value is another job
    stop = StopAfter(2)
    other = run_job(settings(tmp_path / "out2"), ProxyRenderer(), should_stop=stop, progress=stop.progress)
    changed = run_job(settings(tmp_path / "out2").replace(update_strength=0.5), ProxyRenderer())
    assert changed.job_dir != other.job_dir
