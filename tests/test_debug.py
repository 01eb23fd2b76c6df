"""Single-frame debug mode: the debug render equals the video's frame, frame by time, sweeps, the CLI."""

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lib_vid2vid import debug, debug_labels, sigmas
from lib_vid2vid.errors import SettingsError
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import read_png

ROOT = Path(__file__).resolve().parents[1]


def _settings(clip, tmp_path, **kw):
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=1234, denoise=0.5,
                # the plain pipeline: expectations here are computed without the default colour coherence
                colour_coherence=False,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _job_frame(job_dir, stage, k):
    return read_png(Path(job_dir) / "frames" / stage / f"{k:06d}.png")


# ---------------------------------------------------------------- equals the video

@pytest.mark.parametrize(
    "extra",
    [
        {"init_mode": "source", "sigma_schedule": "karras", "sigma_max": 1.0},
        {"init_mode": "source", "seed_mode": "increment", "batch_size": 2},
        {"init_mode": "temporal_blend", "temporal_weights": "1,2,1"},
    ],
    ids=["source_karras", "increment_batch2", "temporal_blend"],
)
def test_stateless_debug_frame_equals_the_videos_frame(clip, tmp_path, extra):
    s = _settings(clip, tmp_path, max_frames=8, **extra)
    full = run_job(s, ProxyRenderer())
    jobs_before = sorted(p.name for p in (tmp_path / "out").iterdir())
    renderer = ProxyRenderer()
    res = debug.render_single_frame(s, renderer, frame=5)
    assert res.frame == 5 and res.exact and renderer.calls == 1 == res.renders
    assert res.note.startswith("exact")
    assert res.output.tobytes() == _job_frame(full.job_dir, "pass1", 5).tobytes()
    assert res.output.shape == (64, 96, 3) and res.output.dtype == np.uint8
    # nothing written: no new job, no debug folder
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == jobs_before


def test_stateless_last_frame_keeps_only_existing_neighbours(clip, tmp_path):
    s = _settings(clip, tmp_path, max_frames=6, init_mode="temporal_blend", temporal_weights="1,2,1")
    full = run_job(s, ProxyRenderer())
    res = debug.render_single_frame(s, ProxyRenderer(), frame=5)
    assert res.output.tobytes() == _job_frame(full.job_dir, "pass1", 5).tobytes()


@pytest.mark.parametrize(
    "extra",
    [
        {"fdc_mode": "mean_std", "motion_mask": True, "colour_coherence": True},
        {"init_mode": "previous_output", "loopback_passes": 2, "loopback_alpha": 0.6},
    ],
    ids=["fdc_colour", "loopback2"],
)
def test_stateful_frame_is_exact_with_full_warmup_and_flagged_otherwise(clip, tmp_path, extra):
    s = _settings(clip, tmp_path, max_frames=6, **extra)
    full = run_job(s, ProxyRenderer())
    stage = f"pass{s.temporal.loopback_passes}"
    want = _job_frame(full.job_dir, stage, 4)
    exact = debug.render_single_frame(s, ProxyRenderer(), frame=4, warmup=4)
    assert exact.exact and exact.output.tobytes() == want.tobytes()
    quick = debug.render_single_frame(s, ProxyRenderer(), frame=4)
    assert not quick.exact and "approximate" in quick.note and "warmup=4" in quick.note
    # warm-up 1 + the frame itself in the last pass
    assert quick.renders >= 2
    # frame 1 with the default warm-up of 1 starts at frame 0: exact
    one = debug.render_single_frame(s, ProxyRenderer(), frame=1)
    assert one.exact and one.output.tobytes() == _job_frame(full.job_dir, stage, 1).tobytes()


def test_render_plan_ranges_by_hand():
    # one pass, warm-up 1: frames 4 and 5
    assert debug.render_plan(5, 1, 1, 1, 0, 24, False) == [[(4, 5)]]
    # colour coherence adds frame 0 (the colour reference)
    assert debug.render_plan(5, 1, 1, 1, 0, 24, True) == [[(0, 0), (4, 5)]]
    # two passes, window 1 before / 1 after: pass 1 renders what pass 2 reads, clipped to the video
    assert debug.render_plan(5, 1, 2, 1, 1, 24, True) == [[(0, 1), (3, 6)], [(0, 0), (4, 5)]]
    assert debug.render_plan(23, 0, 2, 1, 1, 24, False) == [[(22, 23)], [(23, 23)]]


def test_debug_render_reports_request_and_sigmas(clip, tmp_path):
    s = _settings(clip, tmp_path, sigma_schedule="karras", sigma_max=1.0, steps=20, denoise=0.5,
                  sampler="DPM2", motion_mask=True, mask_usage="inpaint")
    res = debug.render_single_frame(s, ProxyRenderer(), frame=3)
    cfg = sigmas.SigmaSettings(schedule="karras", sigma_min=s.sampling.sigma_min, sigma_max=1.0, rho=7.0)
    want = sigmas.used_sigmas(cfg, 20, 0.5, sampler_name="DPM2")
    assert res.sigmas == want and len(want) == 12  # int(0.5 * 20) + 1 steps + the final 0
    assert res.sigmas_text == sigmas.describe(want)
    assert res.seed == 1234 and res.time_s == pytest.approx(3 / 24)
    assert res.init.shape == (64, 96, 3) and res.rendered.shape == (64, 96, 3)
    assert res.mask is not None and res.mask.dtype == np.float32 and res.mask.shape == (64, 96)
    assert res.combined_mask is not None
    host = debug.render_single_frame(s.replace(sigma_schedule="host"), ProxyRenderer(), frame=3)
    assert host.sigmas is None and host.sigmas_text == "host schedule"
    ddim = debug.render_single_frame(s.replace(sampler="DDIM"), ProxyRenderer(), frame=0)
    assert ddim.warning and "DDIM" in ddim.warning


def test_random_seed_is_resolved_and_reported(clip, tmp_path):
    s = _settings(clip, tmp_path, seed=-1)
    res = debug.render_single_frame(s, ProxyRenderer(), frame=0)
    seed = res.settings.sampling.seed
    assert seed >= 0 and res.seed == seed
    again = debug.render_single_frame(s.replace(seed=seed), ProxyRenderer(), frame=0)
    assert again.output.tobytes() == res.output.tobytes()


def test_out_dir_gets_the_pngs(clip, tmp_path):
    s = _settings(clip, tmp_path, sigma_schedule="karras", motion_mask=True, mask_usage="inpaint")
    out = tmp_path / "dbg"
    res = debug.render_single_frame(s, ProxyRenderer(), frame=2, out_dir=out)
    names = {"debug_frame_000002.png", "debug_frame_000002_init.png", "debug_frame_000002_raw.png",
             "debug_frame_000002_mask.png", "debug_frame_000002_sigmas.png"}
    assert {p.name for p in out.iterdir()} == names
    assert {p.name for p in res.paths.values()} == names
    assert read_png(res.paths["output"]).tobytes() == res.output.tobytes()
    assert read_png(res.paths["init"]).tobytes() == res.init.tobytes()
    grey = read_png(res.paths["mask"])[..., 0]
    assert np.array_equal(grey, np.clip(res.mask * 255 + 0.5, 0, 255).astype(np.uint8))
    assert not (tmp_path / "out").exists(), "the debug render must not create a job"


# ---------------------------------------------------------------- frame by time

def test_frame_at_time_picks_the_frame_shown():
    fps = Fraction(24)
    for k in range(24):
        assert debug.frame_at_time(k / 24, fps, 24) == k
        assert debug.frame_at_time((k + 0.99) / 24, fps, 24) == k
    assert debug.frame_at_time(0.5, Fraction(30000, 1001), 40) == 14  # floor(0.5 * 29.97) = 14
    with pytest.raises(SettingsError, match="past the processed range"):
        debug.frame_at_time(1.0, fps, 24)
    with pytest.raises(SettingsError, match="0 or more"):
        debug.frame_at_time(-0.1, fps, 24)


def test_time_is_measured_from_the_start_of_the_range(clip, tmp_path):
    s = _settings(clip, tmp_path, start=0.25)
    by_time = debug.render_single_frame(s, ProxyRenderer(), time_s=0.5)
    assert by_time.frame == 12
    by_index = debug.render_single_frame(s, ProxyRenderer(), frame=12)
    assert by_time.output.tobytes() == by_index.output.tobytes()
    # frame 12 of a range starting at 0.25 s is source frame 18 (0.75 s): its binary strip reads 18
    from tests.clips import frame_index

    assert frame_index(by_time.init) == 18
    with pytest.raises(SettingsError):
        debug.render_single_frame(s, ProxyRenderer(), frame=3, time_s=0.1)
    with pytest.raises(SettingsError, match="from 0 to 17"):
        debug.render_single_frame(s, ProxyRenderer(), frame=18)


# ---------------------------------------------------------------- sweeps

def test_parse_sweep_grid_and_list():
    cells = debug.parse_sweep("sigma_max=0.5,1 x denoise=0.3,0.5,0.7")
    assert cells == [{"sigma_max": 0.5, "denoise": 0.3}, {"sigma_max": 0.5, "denoise": 0.5},
                     {"sigma_max": 0.5, "denoise": 0.7}, {"sigma_max": 1.0, "denoise": 0.3},
                     {"sigma_max": 1.0, "denoise": 0.5}, {"sigma_max": 1.0, "denoise": 0.7}]
    assert debug.parse_sweep("sigma_schedule=karras, exponential,host") == [
        {"sigma_schedule": "karras"}, {"sigma_schedule": "exponential"}, {"sigma_schedule": "host"}]
    assert debug.parse_sweep("steps=10,20 × sigma-max=2") == [{"steps": 10, "sigma_max": 2.0},
                                                              {"steps": 20, "sigma_max": 2.0}]
    assert isinstance(debug.parse_sweep("steps=10")[0]["steps"], int)


@pytest.mark.parametrize(
    "text,fragment",
    [
        ("sigma_maxx=1,2", "unknown setting 'sigma_maxx'"),
        ("denoise=0.3,abc", "axis denoise: 'abc' is not a number"),
        ("denoise=0.3,2", "axis denoise: 2 is above the maximum 1"),
        ("sigma_schedule=karras,cosine", "axis sigma_schedule: 'cosine' is not one of"),
        ("steps=10 x denoise=0.5 x cfg_scale=7", "3 axes"),
        ("width=64,128", "axis width: width cannot be swept"),
        ("denoise=0.3,,0.5", "axis denoise: empty value"),
        ("denoise=0.3,0.3", "given twice"),
        ("denoise=0.3 x denoise=0.5", "same setting"),
        ("denoise", "name=value1,value2"),
        ("", "is empty"),
        ("steps=" + ",".join(str(i) for i in range(1, 8)) + " x cfg_scale=1,2,3,4,5,6", "42 cells"),
    ],
)
def test_bad_sweep_text_gives_a_clear_error(text, fragment):
    with pytest.raises(SettingsError) as err:
        debug.parse_sweep(text)
    msg = str(err.value)
    assert msg.startswith("sweep: ") and fragment in msg and "\n" not in msg


def test_sweep_of_override_settings_needs_an_override(clip, tmp_path):
    s = _settings(clip, tmp_path)  # sigma_schedule host
    with pytest.raises(SettingsError, match="no effect with sigma_schedule host"):
        debug.run_sweep(s, ProxyRenderer(), "sigma_max=0.5,2", frame=0)


def test_bad_combination_names_the_cell(clip, tmp_path):
    s = _settings(clip, tmp_path, sigma_schedule="karras", sigma_min=0.1)
    with pytest.raises(SettingsError, match=r"cell sigma_max=0\.05"):
        debug.run_sweep(s, ProxyRenderer(), "sigma_max=1,0.05", frame=0)


def test_sweep_grid_has_one_cell_per_combination_with_its_labels(clip, tmp_path):
    s = _settings(clip, tmp_path)
    renderer = ProxyRenderer()
    grid, plot, cells = debug.run_sweep(s, renderer, "denoise=0.2,0.8 x seed=1,2,3", frame=4)
    assert renderer.calls == 6 and len(cells) == 6
    w, h = 96, 64
    row_w = cells[0].row_label_rect[2]
    assert row_w >= debug.MIN_ROW_W
    assert grid.shape == (debug.TITLE_H + debug.LABEL_H + 2 * h + debug.GAP, row_w + 3 * w + 2 * debug.GAP, 3)
    expect = [(0.2, 1), (0.2, 2), (0.2, 3), (0.8, 1), (0.8, 2), (0.8, 3)]
    for n, (cell, (d, seed)) in enumerate(zip(cells, expect)):
        r, c = divmod(n, 3)
        assert cell.values == {"denoise": d, "seed": seed} and (cell.row, cell.col) == (r, c)
        assert cell.row_label == f"{d:g}" and cell.col_label == str(seed)
        x = row_w + c * (w + debug.GAP)
        y = debug.TITLE_H + debug.LABEL_H + r * (h + debug.GAP)
        assert cell.rect == (x, y, x + w, y + h)
        assert cell.col_label_rect == (x, debug.TITLE_H, x + w, debug.TITLE_H + debug.LABEL_H)
        assert cell.row_label_rect == (0, y, row_w, y + h)
        # the cell holds exactly the individual render of its settings
        alone = debug.render_single_frame(s.replace(denoise=d, seed=seed), ProxyRenderer(), frame=4)
        x0, y0, x1, y1 = cell.rect
        assert grid[y0:y1, x0:x1].tobytes() == alone.output.tobytes() == cell.result.output.tobytes()
        # the labels drawn where the cell says, with the text it claims
        x0, y0, x1, y1 = cell.col_label_rect
        assert np.array_equal(grid[y0:y1, x0:x1], debug.label_image(str(seed), w, debug.LABEL_H))
        x0, y0, x1, y1 = cell.row_label_rect
        assert np.array_equal(grid[y0:y1, x0:x1], debug.label_image(f"{d:g}", row_w, h))
    # labels are real text: different values give different tiles, and a tile is not blank
    assert not np.array_equal(debug.label_image("1", w, 20), debug.label_image("2", w, 20))
    assert (debug.label_image("1", w, 20) < 128).any()
    title = debug.sweep_title(4, 4 / 24, [("denoise", [0.2, 0.8]), ("seed", [1, 2, 3])])
    assert title == "frame 4 (0.167 s) | rows: denoise | columns: seed"
    assert np.array_equal(grid[: debug.TITLE_H], debug.label_image(title, grid.shape[1], debug.TITLE_H))
    assert plot.dtype == np.uint8 and plot.shape[2] == 3


def test_one_axis_sweep_of_schedules_plots_the_used_sigmas(clip, tmp_path):
    s = _settings(clip, tmp_path, steps=10, denoise=0.6)
    grid, plot, cells = debug.run_sweep(s, ProxyRenderer(), "sigma_schedule=karras,exponential,host", frame=0)
    assert [c.col_label for c in cells] == ["karras", "exponential", "host"]
    assert all(c.row == 0 and c.row_label is None and c.row_label_rect is None for c in cells)
    assert grid.shape == (debug.TITLE_H + debug.LABEL_H + 64, 3 * 96 + 2 * debug.GAP, 3)
    for cell in cells:
        name = cell.values["sigma_schedule"]
        if name == "host":
            assert cell.result.sigmas is None
        else:
            cfg = sigmas.SigmaSettings(schedule=name, sigma_min=s.sampling.sigma_min, sigma_max=1.0)
            assert cell.result.sigmas == sigmas.used_sigmas(cfg, 10, 0.6, sampler_name="Euler")
    from lib_vid2vid.plot import plot_schedules

    want = plot_schedules({c.name: c.result.sigmas for c in cells}, size=(640, 400),
                          title="img2img sigmas used at frame 0")
    assert np.array_equal(plot, want)


def test_sweep_cells_must_form_a_grid(clip, tmp_path):
    s = _settings(clip, tmp_path)
    with pytest.raises(SettingsError, match="full grid"):
        debug.run_sweep(s, ProxyRenderer(), [{"denoise": 0.2, "seed": 1}, {"denoise": 0.8, "seed": 2}], frame=0)


# ---------------------------------------------------------------- CLI

def cli(*args):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "lib_vid2vid", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=120)


def _printed_paths(stdout):
    return [Path(ln.split(": ", 1)[1]) for ln in stdout.splitlines()
            if ln.split(": ", 1)[0] in ("output", "init", "raw", "mask", "sigmas", "grid", "sigmas plot")]


def test_cli_debug_frame_writes_only_debug_pngs(clip, tmp_path):
    out = tmp_path / "out"
    r = cli(clip, "--renderer", "proxy", "--debug-frame", 12, "--width", 96, "--height", 64, "--seed", 7,
            "--sigma-schedule", "karras", "--no-colour-coherence", "--output-dir", out)
    assert r.returncode == 0, r.stderr
    assert [p.name for p in out.iterdir()] == ["debug"]
    files = sorted(p.name for p in (out / "debug").iterdir())
    assert files == ["debug_frame_000012.png", "debug_frame_000012_init.png", "debug_frame_000012_raw.png",
                     "debug_frame_000012_sigmas.png"]
    assert sorted(p.name for p in _printed_paths(r.stdout)) == files
    assert "sigmas used: 10 steps:" in r.stdout  # int(0.45 * 20) + 1 = 10 steps
    s = _settings(clip, tmp_path, seed=7, sigma_schedule="karras", denoise=0.45)
    want = debug.render_single_frame(s, ProxyRenderer(), frame=12)
    assert read_png(out / "debug" / "debug_frame_000012.png").tobytes() == want.output.tobytes()


def test_cli_sweep_by_time_writes_grid_and_plot(clip, tmp_path):
    out = tmp_path / "out"
    r = cli(clip, "--renderer", "proxy", "--debug-time", 0.5, "--sweep", "sigma_max=0.5,2 x denoise=0.3,0.6",
            "--sigma-schedule", "karras", "--width", 96, "--height", 64, "--seed", 7, "--output-dir", out)
    assert r.returncode == 0, r.stderr
    assert "sweep of frame 12" in r.stdout and "4 cells" in r.stdout
    assert [p.name for p in out.iterdir()] == ["debug"]
    assert sorted(p.name for p in (out / "debug").iterdir()) == ["sweep_000012_grid.png",
                                                                 "sweep_000012_sigmas.png"]
    assert all(p.is_file() for p in _printed_paths(r.stdout))


def test_cli_bad_sweep_is_one_line(clip, tmp_path):
    r = cli(clip, "--renderer", "proxy", "--debug-frame", 0, "--sweep", "bogus=1,2", "--output-dir",
            tmp_path / "out")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: sweep: ") and "bogus" in lines[0]
    assert not (tmp_path / "out").exists()


def test_preview_dispatches_on_the_preview_settings(clip, tmp_path):
    s = _settings(clip, tmp_path, preview_mode="frame", preview_frame=3)
    res = debug.preview(s, ProxyRenderer())
    assert isinstance(res, debug.DebugResult) and res.frame == 3
    grid, plot, cells = debug.preview(s.replace(preview_mode="sweep", preview_sweep="denoise=0.2,0.4"),
                                      ProxyRenderer())
    assert [c.values for c in cells] == [{"denoise": 0.2}, {"denoise": 0.4}] and cells[0].result.frame == 3
    with pytest.raises(SettingsError, match="preview_mode"):
        debug.preview(s.replace(preview_mode="video"), ProxyRenderer())


def test_long_labels_are_shrunk_or_cut_to_their_tile():
    tile = debug.label_image("sigma_schedule=polyexponential", 40, 20)
    assert tile.shape == (20, 40, 3) and (tile < 128).any()
    shown, _, box = debug_labels._fit_text("sigma_schedule=polyexponential", 36)
    assert shown.endswith("...") and box[2] - box[0] <= 36
