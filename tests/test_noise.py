"""Warped noise (lib_vid2vid/noise.py): white Gaussian at every frame, carried by the flow, deterministic, resumable."""

import math

import cv2
import numpy as np
import pytest

from lib_vid2vid import noise
from lib_vid2vid.noise import NoiseState, WarpedNoise, mix, request_noise
from lib_vid2vid.params import Settings
from lib_vid2vid.pipeline import run_job
from lib_vid2vid.proxy import ProxyRenderer
from lib_vid2vid.renderer import RenderRequest
from tests.clips import texture
from tests.doubles import StopAfter


def _white(z: np.ndarray) -> None:
    """Assert i.i.d. N(0, 1)-like: mean, variance, kurtosis and neighbour correlations within 5 sigma."""
    z = z.astype(np.float64)
    n = z.size
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z**4) / z.var() ** 2 - 3) < 5 * math.sqrt(24 / n)
    for a, b in ((z[..., 1:], z[..., :-1]), (z[..., 1:, :], z[..., :-1, :])):  # right and down neighbours
        rho = np.mean(a * b)
        assert abs(rho) < 5 / math.sqrt(a.size), f"neighbour correlation {rho:.4f}"


def _smooth_flow(rows, cols, t):
    """A zoom + rotation + shear about the centre, changing with t, in fine cells (expansion and contraction)."""
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    x, y = x - cols / 2, y - rows / 2
    a, z = 0.03 * math.sin(t), 0.02 * math.cos(t)
    fx = z * x - a * y + 1.7 + 0.8 * np.sin(y / 9)
    fy = a * x + z * y - 0.6
    return np.stack([fx, fy], -1).astype(np.float32)


def test_first_frame_is_white_gaussian():
    field = WarpedNoise(7, 512, 512, channels=4)
    z = field.latent(field.first())
    assert z.shape == (1, 4, 64, 64) and z.dtype == np.float32
    _white(z)


def test_stays_white_gaussian_after_many_warps_with_holes_and_collisions():
    field = WarpedNoise(3, 512, 384, channels=4, batch=2)
    state = field.first()
    rows, cols = field.grid
    for t in range(12):
        fw = _smooth_flow(rows, cols, t)
        state = field.step(state, fw)
    z = field.latent(state)
    assert z.shape == (2, 4, 48, 64)
    _white(z)
    # a bilinear warp of the latent itself is not: it blurs (variance drops, neighbours correlate)
    z0 = field.latent(field.first())[0, 0]
    y, x = np.mgrid[0:48, 0:64].astype(np.float32)
    blurred = cv2.remap(z0, x + 0.5, y + 0.5, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    assert blurred.var() < 0.7 and np.mean(blurred[:, 1:] * blurred[:, :-1]) / blurred.var() > 0.3


def test_noise_moves_with_the_content_and_survives_a_round_trip():
    field = WarpedNoise(5, 256, 256)
    rows, cols = field.grid
    z0 = field.latent(field.first())
    # 4 steps of 2 fine cells right = 8 fine cells = 2 latent pixels: the latent moves by exactly 2 pixels
    state = field.first()
    right = np.zeros((rows, cols, 2), np.float32)
    right[..., 0] = 2.0
    for _ in range(4):
        state = field.step(state, right)
    z = field.latent(state)
    assert np.array_equal(z[..., 2:], z0[..., :-2])
    _white(z)  # the two columns that entered are fresh
    assert abs(np.mean(z[..., :2] * z0[..., :2])) < 0.2
    # there and back with a sub-pixel, non-uniform flow: most of the noise comes back where it was
    state = field.first()
    y, x = np.mgrid[0:rows, 0:cols].astype(np.float32)
    there = np.stack([1.3 + 0.01 * (y - rows / 2), -2.4 + 0.0 * x], -1).astype(np.float32)
    state = field.step(state, there)
    state = field.step(state, -there)  # the flow back, on (about) the moved grid: exact here, it is smooth
    z = field.latent(state)
    inner = (slice(None), slice(None), slice(2, -2), slice(2, -2))
    corr = np.mean(z[inner] * z0[inner])
    assert corr > 0.9, f"only {corr:.3f} of the noise survived the round trip"


def test_slow_motion_accumulates_instead_of_rounding_away():
    field = WarpedNoise(9, 128, 128)
    rows, cols = field.grid
    slow = np.zeros((rows, cols, 2), np.float32)
    slow[..., 1] = 0.25 + noise.STILL  # above the still threshold: a whole number of cells and a quarter
    state = first = field.first()
    for _ in range(4):
        state = field.step(state, slow)
    v0 = first.values.reshape(rows, cols, -1)
    v = state.values.reshape(rows, cols, -1)
    shift = 1 + 4 * int(noise.STILL)  # 4 x (STILL + 0.25) cells down, exactly
    assert np.array_equal(v[shift:], v0[:-shift])


def test_still_picture_keeps_its_noise():
    field = WarpedNoise(11, 128, 64)
    rows, cols = field.grid
    jitter = np.random.default_rng(0).uniform(-0.45, 0.45, (rows, cols, 2)).astype(np.float32)
    state = field.first()
    after = field.step(state, jitter * noise.STILL, -jitter * noise.STILL)
    assert np.array_equal(after.values, state.values)


def test_occluded_content_is_replaced_by_fresh_noise():
    field = WarpedNoise(2, 128, 128)
    rows, cols = field.grid
    state = field.first()
    occ = np.zeros((rows, cols), np.float32)
    occ[: rows // 2] = 1
    after = field.step(state, np.zeros((rows, cols, 2), np.float32), occluded=occ)
    v0, v = state.values.reshape(rows, cols, -1), after.values.reshape(rows, cols, -1)
    assert np.array_equal(v[rows // 2:], v0[rows // 2:])
    assert not (v[: rows // 2] == v0[: rows // 2]).any()
    _white(field.latent(after))


def test_deterministic_from_seed_pass_and_frame():
    def chain(seed, loop=0):
        field = WarpedNoise(seed, 192, 128, loop=loop)
        state = field.first()
        rows, cols = field.grid
        out = [field.latent(state)]
        for t in range(5):
            state = field.step(state, _smooth_flow(rows, cols, t))
            out.append(field.latent(state))
        return np.stack(out), state

    a, sa = chain(1)
    b, _ = chain(1)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, chain(2)[0]) and not np.array_equal(a, chain(1, loop=1)[0])
    back = NoiseState.from_bytes(sa.to_bytes())
    assert back.frame == sa.frame and back.values.tobytes() == sa.values.tobytes()
    assert back.offsets.tobytes() == sa.offsets.tobytes()


def test_fine_flows_follow_a_moving_texture():
    a, b = texture(96, 128), texture(96, 128, dx=6.0, dy=-2.0)
    field = WarpedNoise(1, 128, 96)
    fw, bw = noise.fine_flows(a, b, field.grid)
    assert fw.shape == (48, 64, 2)
    inner = (slice(8, -8), slice(8, -8))
    assert np.allclose(np.median(fw[inner], axis=(0, 1)), [3.0, -1.0], atol=0.15)  # half-size cells
    assert np.allclose(np.median(bw[inner], axis=(0, 1)), [-3.0, 1.0], atol=0.15)


def test_mix_keeps_unit_variance():
    rng = np.random.default_rng(0)
    w, f = rng.standard_normal((2, 200_000)).astype(np.float32)
    for s in (0.0, 0.3, 0.8):
        m = mix(w, f, s)
        assert abs(m.var() - 1) < 0.02 and abs(np.corrcoef(m, w)[0, 1] - math.sqrt(s)) < 0.01
    assert mix(w, None, 1.0) is w
    with pytest.raises(Exception, match="noise strength"):
        mix(w, f, 1.5)
    req = RenderRequest(init=np.zeros((16, 16, 3), np.uint8), seed=1, denoise=0.5, steps=1, cfg=1, prompt="")
    assert request_noise(req) is None
    req.noise, req.noise_strength = w.reshape(1, 4, 50, 1000), 0.5
    assert request_noise(req, f.reshape(4, 50, 1000), index=0).shape == (4, 50, 1000)


def test_proxy_detail_comes_from_the_noise():
    init = texture(64, 96)
    base = dict(init=init, seed=4, denoise=0.8, steps=1, cfg=1, prompt="")
    seeded = ProxyRenderer().render(RenderRequest(**base))[0]
    field = WarpedNoise(4, 96, 64)
    z = field.latent(field.first())
    warped = ProxyRenderer().render(RenderRequest(**base, noise=z, noise_strength=1.0))[0]
    shifted = ProxyRenderer().render(RenderRequest(**base, noise=np.roll(z, 1, axis=-1), noise_strength=1.0))[0]
    assert not np.array_equal(seeded, warped) and not np.array_equal(warped, shifted)
    none = ProxyRenderer().render(RenderRequest(**base, noise=z, noise_strength=0.0))[0]
    assert np.array_equal(none, seeded)  # strength 0: the seed's noise alone


# ---------------------------------------------------------------- in a job


@pytest.fixture(scope="module")
def pan_clip(tmp_path_factory):
    """40 frames of a texture panning 8 px (one latent pixel) right per frame, 128x96 at 24 fps (lossless H.264)."""
    import av

    path = tmp_path_factory.mktemp("noise") / "pan.mp4"
    with av.open(str(path), "w") as c:
        st = c.add_stream("libx264", rate=24, options={"qp": "0", "preset": "ultrafast"})
        st.width, st.height, st.pix_fmt = 128, 96, "yuv444p"
        for i in range(40):
            for pkt in st.encode(av.VideoFrame.from_ndarray(texture(96, 128, dx=8.0 * i), "rgb24")):
                c.mux(pkt)
        for pkt in st.encode():
            c.mux(pkt)
    return path


def _settings(clip, out, **kw):
    base = dict(input=str(clip), output_dir=str(out), width=128, height=96, seed=77, denoise=0.6,
                noise_mode="warped", max_frames=40,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _frames(job_dir, stage="pass1"):
    return {p.name: p.read_bytes() for p in sorted((job_dir / "frames" / stage).glob("*.png"))}


class Recorder(ProxyRenderer):
    def __init__(self):
        super().__init__()
        self.noises = {}

    def render(self, request):
        self.noises[(request.frame_index, request.seed)] = (request.noise.copy(), request.noise_strength)
        return super().render(request)


@pytest.mark.parametrize("extra", [{}, {"seed_mode": "increment", "noise_strength": 0.7, "batch_size": 2},
                                   {"init_mode": "flow_warp", "loopback_passes": 2}],
                         ids=["fixed", "increment_mixed_batch", "flow_warp_loopback"])
def test_resumed_job_gets_the_same_noise_and_frames(pan_clip, tmp_path, extra):
    full_r = Recorder()
    full = run_job(_settings(pan_clip, tmp_path / "a", **extra), full_r)
    passes = extra.get("loopback_passes", 1)
    # stop after frame 21 (past the checkpoint at 16: the resume loads it and recomputes 17..21), resume
    stop = StopAfter(21, stage=f"pass{passes}" if passes > 1 else None)
    part_r = Recorder()
    run_job(_settings(pan_clip, tmp_path / "b", **extra), part_r, should_stop=stop, progress=stop.progress)
    rest_r = Recorder()
    res = run_job(_settings(pan_clip, tmp_path / "b", **extra), rest_r)
    assert res.status == "done"
    for p in range(1, passes + 1):
        assert _frames(full.job_dir, f"pass{p}") == _frames(res.job_dir, f"pass{p}")
    for key, (z, s) in rest_r.noises.items():
        assert z.tobytes() == full_r.noises[key][0].tobytes() and s == full_r.noises[key][1]
    assert rest_r.noises, "the resumed run rendered nothing"
    z = next(iter(full_r.noises.values()))[0]
    s = Settings().replace(keyframe_mode="off", **extra)
    assert z.shape == (s.sampling.batch_size, 4, 12, 16)
    assert not (res.job_dir / "noise").exists(), "checkpoints are removed when the job is done"


def test_resume_without_checkpoints_recomputes_the_same_noise(pan_clip, tmp_path):
    full_r = Recorder()
    run_job(_settings(pan_clip, tmp_path / "a"), full_r)
    stop = StopAfter(19)
    run_job(_settings(pan_clip, tmp_path / "b"), Recorder(), should_stop=stop, progress=stop.progress)
    job_dir = next((tmp_path / "b").iterdir())
    ckpts = list((job_dir / "noise").rglob("*.bin"))
    assert ckpts, "a checkpoint is written every 16 frames"
    for c in ckpts:
        c.write_bytes(b"damaged")
    rest_r = Recorder()
    run_job(_settings(pan_clip, tmp_path / "b"), rest_r)
    assert min(k[0] for k in rest_r.noises) == 19
    for key, (z, _) in rest_r.noises.items():
        assert z.tobytes() == full_r.noises[key][0].tobytes()


def test_warped_noise_moves_detail_with_a_pan(pan_clip, tmp_path):
    """On a texture panning one latent pixel per frame the warped job's frames differ less from the previous frame
    moved by the pan than the fixed seed's (texture sticking) and a new seed's (flicker). (Slower motion gains less:
    a shift of v < 1 latent pixel renews 2 v (1 - v) of each latent pixel's variance; see noise.py.)"""
    from lib_vid2vid.report import report

    errs = {}
    for name, kw in {"fixed": {"noise_mode": "seed"}, "increment": {"noise_mode": "seed", "seed_mode": "increment"},
                     "warped": {}}.items():
        res = run_job(_settings(pan_clip, tmp_path / name, max_frames=24, **kw), ProxyRenderer())
        errs[name] = report(res.job_dir, max_side=None, write=False)["warp_error"]
    assert errs["warped"] < errs["fixed"] < errs["increment"], errs


def test_single_frame_preview_has_the_jobs_noise(pan_clip, tmp_path):
    """The one-frame preview (debug_render) rebuilds the noise chain from the source: same frame as the job."""
    from lib_vid2vid.debug import render_single_frame

    s = _settings(pan_clip, tmp_path / "job", max_frames=8)
    res = run_job(s, ProxyRenderer())
    frame = render_single_frame(s, ProxyRenderer(), frame=6)
    assert frame.exact
    want = cv2.cvtColor(cv2.imread(str(res.job_dir / "frames" / "pass1" / "000006.png")), cv2.COLOR_BGR2RGB)
    assert np.array_equal(frame.output, want)


def test_keyframe_strategy_with_warped_noise_resumes_byte_exact(pan_clip, tmp_path):
    """The keyframe strategy analyses every 4th frame first: the chain is rebuilt between them, same noise."""
    from lib_vid2vid.params import STRATEGIES

    kw = {**STRATEGIES["keyframes"], "max_frames": 24}
    full_r = Recorder()
    full = run_job(_settings(pan_clip, tmp_path / "a", **kw), full_r)
    assert full.status == "done" and len(full_r.noises) >= 6  # keyframes only (plus scene starts)
    stop = StopAfter(3)
    run_job(_settings(pan_clip, tmp_path / "b", **kw), Recorder(), should_stop=stop, progress=stop.progress)
    rest_r = Recorder()
    res = run_job(_settings(pan_clip, tmp_path / "b", **kw), rest_r)
    assert res.status == "done" and rest_r.noises, "the stop came before the keyframes were all rendered"
    for key, (z, _) in rest_r.noises.items():
        assert z.tobytes() == full_r.noises[key][0].tobytes()
    # a keyframe's noise is the chain's at that frame: the same as a plain warped job's frame
    plain_r = Recorder()
    run_job(_settings(pan_clip, tmp_path / "c", max_frames=24), plain_r)
    for key, (z, _) in full_r.noises.items():
        assert z.tobytes() == plain_r.noises[key][0].tobytes()
    for stage in ("keys", "pass1"):
        if (full.job_dir / "frames" / stage).is_dir():
            assert _frames(full.job_dir, stage) == _frames(res.job_dir, stage)
