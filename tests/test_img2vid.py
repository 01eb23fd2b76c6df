"""Image to video (lib_vid2vid/img2vid.py): clip plans, chains and their colour joins (with a fake generator), and
Stable Video Diffusion itself with a tiny random-weight model (frame counts, fps, resume, errors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib_vid2vid import img2vid, params, video
from lib_vid2vid.errors import Vid2VidError
from lib_vid2vid.workspace import Job


def _image(path: Path, size=(120, 80), seed=0, low=0, high=256) -> Path:
    rgb = np.random.default_rng(seed).integers(low, high, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)
    return path


def _settings(out: Path, **kw) -> params.Img2VidSettings:
    base = dict(width=64, height=64, steps=1, seed=3, output_dir=str(out))
    base.update(kw)
    s = params.Img2VidSettings(**base)
    s.validate()
    return s


def _frames(job_dir: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((job_dir / "frames" / img2vid.STAGE).glob("*.png"))]


class FakeSVD:
    """A generator whose clips are a known function of the conditioning image: frame 0 is the image with a
    colour jump (x + 25, as a new clip's colours may jump), frame i adds ``drift * i`` (a drift within the clip);
    the seed adds a little pattern, so seeds matter."""

    def __init__(self, native: int = 5, drift: float = 2.0):
        self.native_frames = native
        self.drift = drift
        self.calls: list[int] = []

    def host_identity(self):
        return {"renderer": "fake-svd", "native": self.native_frames}

    def clip(self, image, *, frames, seed, **_):
        self.calls.append(seed)
        base = image.astype(np.float32) + 25 + np.random.default_rng(seed).normal(0, 1, image.shape)
        return [np.clip(base + self.drift * i + 0.5, 0, 255).astype(np.uint8) for i in range(frames)]


def test_clip_plan():
    assert img2vid.clip_plan(14, 14) == [(0, 14, 0)]
    assert img2vid.clip_plan(10, 25) == [(0, 10, 0)]
    assert img2vid.clip_plan(30, 25) == [(0, 25, 0), (25, 5, 1)]
    plan = img2vid.clip_plan(60, 25)
    assert plan == [(0, 25, 0), (25, 24, 1), (49, 11, 1)] and sum(n for _, n, _ in plan) == 60


def test_chain_join_colour_coherence(tmp_path):
    img = _image(tmp_path / "a.png", low=40, high=120)  # room for the jumps below 255
    jumps = {}
    for on in (True, False):
        gen = FakeSVD(native=5)
        r = img2vid.run_image(img, gen, _settings(tmp_path / f"out{on}", frames=12, colour_coherence=on))
        assert r.state == "done" and r.frames == 12 and gen.calls == [3, 4, 5]  # clip k: seed + k
        px = [np.asarray(Image.open(p), dtype=np.float64) for p in
              sorted((r.job_dir / "frames" / img2vid.STAGE).glob("*.png"))]
        assert len(px) == 12
        # mean step at the joins (frames 4 -> 5 and 8 -> 9) against the step inside a clip
        jumps[on] = max(abs((px[j] - px[j - 1]).mean()) for j in (5, 9))
        inside = abs((px[3] - px[2]).mean())
        assert inside == pytest.approx(2.0, abs=0.6)
    assert jumps[False] > 20  # without coherence a new clip jumps at the join (25 + the drift)
    assert jumps[True] < 2.5  # with it, the join steps about as much as a frame inside a clip (2)


def test_resume_after_a_clip_is_byte_exact_and_done_images_are_skipped(tmp_path):
    img = _image(tmp_path / "a.png")
    full = img2vid.run_image(img, FakeSVD(), _settings(tmp_path / "a", frames=12))
    s = _settings(tmp_path / "b", frames=12)
    gen = FakeSVD()
    part = img2vid.run_image(img, gen, s, should_stop=lambda: True)
    assert part.state == "interrupted" and part.frames == 5 and gen.calls == [3]
    resumed = img2vid.run_image(img, gen, s)
    assert resumed.job_dir == part.job_dir and gen.calls == [3, 4, 5] and resumed.state == "done"
    assert _frames(resumed.job_dir) == _frames(full.job_dir)
    again = img2vid.run_image(img, gen, s)
    assert again.state == "skipped" and gen.calls == [3, 4, 5]


def test_fit_image_sizes():
    rgb = np.zeros((100, 200, 3), np.uint8)
    assert img2vid.fit_image(rgb, params.Img2VidSettings(width=128, height=64)).shape == (64, 128, 3)
    assert img2vid.fit_image(rgb, params.Img2VidSettings(width=64, height=64)).shape == (64, 64, 3)
    assert img2vid.fit_image(rgb, params.Img2VidSettings(resize="none")).shape == (64, 192, 3)
    with pytest.raises(Vid2VidError, match="multiple of 64"):
        params.Img2VidSettings(width=100).validate()


def test_bad_inputs(tmp_path):
    with pytest.raises(Vid2VidError, match="not found"):
        img2vid.find_images([str(tmp_path / "none.png")])
    (tmp_path / "notes.png").write_text("hello")
    with pytest.raises(Vid2VidError, match="cannot be read as an image"):
        img2vid.read_image(tmp_path / "notes.png")
    (tmp_path / "dir").mkdir()
    _image(tmp_path / "dir" / "b.jpg")
    _image(tmp_path / "dir" / "a.png")
    (tmp_path / "dir" / "c.txt").write_text("x")
    assert [p.name for p in img2vid.find_images([str(tmp_path / "dir")])] == ["a.png", "b.jpg"]


# ------------------------------------------------------------------ the real pipeline, tiny model


@pytest.fixture(scope="module")
def svd(tiny_models):
    from tests.diffusers_skip import require_diffusers

    require_diffusers()
    return tiny_models("svd")


def _with_frames(svd: Path, dest: Path, n: int) -> Path:
    """The tiny SVD model with its UNet's native clip length set to ``n`` frames (svd: 14, svd_xt: 25)."""
    shutil.copytree(svd, dest)
    cfg = dest / "unet" / "config.json"
    cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "num_frames": n}))
    return dest


def test_svd_frame_count_and_fps(tmp_path, svd):
    from lib_vid2vid.host.diffusers import SVDGenerator

    gen = SVDGenerator(_with_frames(svd, tmp_path / "svd14", 14))
    assert gen.native_frames == 14
    img = _image(tmp_path / "a.png")
    r = img2vid.run_image(img, gen, _settings(tmp_path / "out", fps_id=7))
    info = video.probe(r.video)
    assert (info.frame_count, info.fps, info.width, info.height) == (14, 8, 64, 64)  # fps = fps_id + 1
    m = Job.open(r.job_dir).manifest
    assert m["kind"] == "img2vid" and m["host"]["renderer"] == "diffusers-svd" and m["resolved_seed"] == 3
    r = img2vid.run_image(img, gen, _settings(tmp_path / "out2", frames=6, output_fps=12, keep_frames=False))
    info = video.probe(r.video)
    assert (info.frame_count, info.fps) == (6, 12) and not (r.job_dir / "frames").exists()


def test_svd_chain_past_25_frames_and_resume(tmp_path, svd):
    from lib_vid2vid.host.diffusers import SVDGenerator

    gen = SVDGenerator(svd)
    assert gen.native_frames == 25
    img = _image(tmp_path / "a.png")
    s = _settings(tmp_path / "out", frames=30)
    part = img2vid.run_image(img, gen, s, should_stop=lambda: True)
    assert part.state == "interrupted" and part.frames == 25
    r = img2vid.run_image(img, gen, s)
    assert r.job_dir == part.job_dir and r.state == "done"
    assert video.probe(r.video).frame_count == 30
    clips = Job.open(r.job_dir).manifest["clips"]
    assert [(c["first"], c["frames"], c["seed"]) for c in clips] == [(0, 25, 3), (25, 5, 4)]
    full = img2vid.run_image(img, gen, _settings(tmp_path / "full", frames=30))
    assert _frames(full.job_dir) == _frames(r.job_dir)  # the resumed chain equals an uninterrupted one


def test_svd_cli_and_wrong_model(tmp_path, svd, tiny_models, capsys):
    img = _image(tmp_path / "a.png")
    out = tmp_path / "out"
    code = img2vid.main([str(img), "--model", str(_with_frames(svd, tmp_path / "svd4", 4)), "--width", "64",
                         "--height", "64", "--steps", "1", "--output-dir", str(out), "--quiet"])
    assert code == 0
    assert capsys.readouterr().out.startswith("done ")
    code = img2vid.main([str(img), "--model", str(tiny_models("sd")), "--output-dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "is a Stable Diffusion 1.x/2.x model, not Stable Video Diffusion" in err[0]
    code = img2vid.main([str(img), "--model", str(tmp_path / "nowhere"), "--output-dir", str(out)])
    assert code == 1 and "not found" in capsys.readouterr().err


def test_the_webui_input_image_is_saved_once_by_its_content(tmp_path):
    """The img2img image becomes a PNG named by its content: the same image -> the same file (same mtime, so
    the same job resumes); another image -> another file. A folder named instead is used as it is."""
    rgb = np.random.default_rng(1).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    a = img2vid.save_input_image(Image.fromarray(rgb), tmp_path)
    stamp = a.stat().st_mtime_ns
    b = img2vid.webui_images("", [None, Image.fromarray(rgb)], tmp_path)
    assert b == [a] and a.stat().st_mtime_ns == stamp and a.parent == tmp_path / "uploads"
    assert (np.asarray(Image.open(a)) == rgb).all()
    other = img2vid.save_input_image(255 - rgb, tmp_path)
    assert other != a
    folder = tmp_path / "stills"
    folder.mkdir()
    _image(folder / "b.png")
    _image(folder / "a.jpg")
    assert [p.name for p in img2vid.webui_images(f"{folder}\n", [Image.fromarray(rgb)], tmp_path)] == ["a.jpg", "b.png"]
    with pytest.raises(Vid2VidError, match="needs an image"):
        img2vid.webui_images("  ", [None], tmp_path)


def test_generator_cache_keeps_one_model(tmp_path):
    made = []

    def factory(model, config=None, device="auto"):
        made.append(model)
        return FakeSVD()

    cache = img2vid.GeneratorCache(factory)
    first = cache.get("/m/svd", None, "cpu")
    assert cache.get("/m/svd", "", "cpu") is first and made == ["/m/svd"]
    second = cache.get("/m/svd-xt", None, "cpu")
    assert second is not first and made == ["/m/svd", "/m/svd-xt"]
    assert cache.get("/m/svd-xt", None, "cuda") is not second


def test_run_images_goes_on_after_a_failed_image(tmp_path):
    good = _image(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    seen = []
    results = img2vid.run_images([bad, good], FakeSVD(native=3), _settings(tmp_path / "out"),
                                 on_image=lambda n, i: seen.append((n, i.name)),
                                 progress=lambda n, i, done, total: seen.append((n, done, total)))
    assert [(r.image.name, r.state) for r in results] == [("bad.png", "failed"), ("good.png", "done")]
    assert "cannot be read as an image" in results[0].error
    assert seen == [(1, "bad.png"), (2, "good.png"), (2, 3, 3)]
    with pytest.raises(Vid2VidError):
        img2vid.run_images([bad], FakeSVD(), _settings(tmp_path / "out"))
