"""Depth masks (lib_vid2vid.depth): MiDaS networks, preprocessing, cache, user depth, low-cut.

Tests that build networks need torch and timm (timm needs torchvision); without them they skip with the
reason. The rest (sizes, cache, user depth, low-cut, errors) run everywhere.
"""

import json
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib_vid2vid import depth as dp
from lib_vid2vid.errors import SettingsError, Vid2VidError

KEYS_JSON = Path(__file__).parent / "data" / "midas_state_dict_keys.json"


def need_timm():
    pytest.importorskip("torch")
    return pytest.importorskip("timm", reason="timm (with torchvision) is needed to build MiDaS backbones")


def frame(h=64, w=96, seed=0):
    """RGB uint8 smooth random texture."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


# Small random-weight versions of the four architectures (timm kwargs shrink the ViTs).
TINY = {
    "dpt": dp.MidasConfig("dpt", ("vit_large_patch16_384",), (16, 32, 64, 64), 32, 64, "minimal", dp.HALF, dp.HALF,
                          hooks=(0, 1, 2, 3), vit_features=64,
                          backbone_kwargs=dict(embed_dim=64, depth=4, num_heads=2, img_size=64)),
    "dpt_hybrid": dp.MidasConfig("dpt", ("vit_base_r50_s16_384", "vit_base_resnet50_384"), (256, 512, 64, 64), 32,
                                 64, "minimal", dp.HALF, dp.HALF, hooks=(0, 1, 2, 3), vit_features=64, hybrid=True,
                                 backbone_kwargs=dict(embed_dim=64, depth=4, num_heads=2, img_size=64)),
    "midas": dp.MidasConfig("midas", ("resnet18",), (64, 128, 256, 512), 32, 64, "upper_bound",
                            dp.IMAGENET_MEAN, dp.IMAGENET_STD),
    "midas_small": dp.MidasConfig("midas_small", ("tf_efficientnet_lite0",), (24, 40, 112, 320), 16, 64,
                                  "upper_bound", dp.IMAGENET_MEAN, dp.IMAGENET_STD),
}


# ------------------------------------------------------------------------------------ preprocessing


@pytest.mark.parametrize("kind,size,expected", [
    ("midas_v21_small", (512, 512), (256, 256)),
    ("midas_v21", (512, 512), (384, 384)),
    ("dpt_hybrid", (512, 512), (384, 384)),
    # upper_bound: s = min(384/1920, 384/1080) = 0.2 -> 384 x 216 -> 216/32 = 6.75 -> 7 * 32 = 224
    ("midas_v21", (1920, 1080), (384, 224)),
    # minimal: |1 - 0.2| > |1 - 0.356| so the height fits: 1920 * 384/1080 = 682.7 -> 21 * 32 = 672
    ("dpt_large", (1920, 1080), (672, 384)),
    # 1080 * 256/1920 = 144 -> 144/32 = 4.5 rounds half to even -> 4 * 32 = 128
    ("midas_v21_small", (1920, 1080), (256, 128)),
    # minimal enlarges a small frame by the scale closer to 1: 384/96 = 4 (not 6) -> 384 x 256
    ("dpt_large", (96, 64), (384, 256)),
])
def test_net_input_size_as_midas(kind, size, expected):
    cfg = dp.MODELS[kind].config
    assert dp.net_input_size(*size, cfg.net, cfg.resize) == expected


def test_preprocess_normalisation_constants():
    flat = np.full((64, 96, 3), (255, 0, 128), np.uint8)
    x = dp.preprocess(flat, dp.MODELS["midas_v21_small"].config)
    # upper_bound 256: s = min(256/96, 256/64) = 2.667 -> 256 x 170.7 -> 170.7/32 = 5.33 -> 5 * 32 = 160
    assert x.shape == (3, 160, 256) and x.dtype == np.float32
    expect = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (128 / 255 - 0.406) / 0.225]
    for c in range(3):
        np.testing.assert_allclose(x[c], expect[c], atol=1e-5)
    y = dp.preprocess(flat, dp.MODELS["dpt_hybrid"].config)
    np.testing.assert_allclose(y[:, 0, 0], [(1 - 0.5) / 0.5, (0 - 0.5) / 0.5, (128 / 255 - 0.5) / 0.5], atol=1e-5)


def test_preprocess_rejects_non_rgb_u8():
    with pytest.raises(Vid2VidError, match="RGB uint8"):
        dp.preprocess(np.zeros((8, 8, 3), np.float32), dp.MODELS["midas_v21"].config)


# ------------------------------------------------------------------------------------------ networks


@pytest.fixture(scope="module")
def tiny_nets():
    """One random-weight tiny network per architecture (built once; seeded)."""
    need_timm()
    import torch

    nets = {}
    for name, cfg in TINY.items():
        torch.manual_seed(0)
        est = dp.DepthEstimator(dp.build_model(cfg), cfg)
        with torch.no_grad():  # lift the last conv so the final ReLU passes a varying map, not all zeros
            est.net.scratch.output_conv[4].bias.fill_(1.0)
        nets[name] = est
    return nets


@pytest.mark.parametrize("name", list(TINY))
def test_tiny_network_shape_range_determinism(tiny_nets, name):
    est = tiny_nets[name]
    rgb = frame(64, 96)
    d1 = est(rgb)
    d2 = est(rgb)
    assert d1.shape == (64, 96) and d1.dtype == np.float32
    assert d1.min() == 0.0 and d1.max() == 1.0  # per-frame min/max normalisation
    assert np.array_equal(d1, d2)
    raw = est.predict(rgb)
    np.testing.assert_allclose(d1, (raw - raw.min()) / (raw.max() - raw.min()), atol=1e-6)


@pytest.mark.parametrize("name", ["dpt", "midas_small"])
def test_state_dict_round_trip_through_loader(tiny_nets, tmp_path, name):
    import torch

    est = tiny_nets[name]
    path = tmp_path / "weights.pt"
    sd = est.net.state_dict()
    # the official v2.1 files hold a training checkpoint {"model": ..., "optimizer": ...}; both forms load
    torch.save({"model": sd, "optimizer": {}} if name == "midas_small" else sd, path)
    net = dp.load_model(path, TINY[name])
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k
    rgb = frame(64, 96, seed=3)
    again = dp.DepthEstimator(net, TINY[name])
    assert np.array_equal(again.predict(rgb), est.predict(rgb))


def test_wrong_weights_is_one_line_error(tiny_nets, tmp_path):
    import torch

    path = tmp_path / "dpt_hybrid-midas-501f0c75.pt"
    torch.save(tiny_nets["dpt"].net.state_dict(), path)
    with pytest.raises(Vid2VidError, match=r"does not fit the .* network: \d+ missing") as e:
        dp.load_model(path, TINY["midas_small"])
    assert "\n" not in str(e.value)
    bad = tmp_path / "damaged.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(Vid2VidError, match="cannot read MiDaS weights"):
        dp.load_model(bad, TINY["midas_small"])


def test_full_size_key_names_match_official():
    """Every official network's state_dict keys and shapes, built on the meta device (no memory)."""
    need_timm()
    import torch

    expected = json.loads(KEYS_JSON.read_text())
    official_params = {  # parameter count x 4 bytes = the official file sizes (470 MB, 1.28 GB, 422 MB, 82 MB)
        "dpt_hybrid": 123_146_985, "dpt_large": 344_055_465, "midas_v21": 105_565_929, "midas_v21_small": 21_394_729,
    }
    for kind in dp.MODELS:
        with torch.device("meta"):
            net = dp.build_model(kind)
        mine = {k: list(v.shape) for k, v in net.state_dict().items()}
        assert mine == expected[kind], kind
        assert sum(int(np.prod(s)) for s in mine.values()) == official_params[kind]


def test_from_module_uses_kind_preprocessing():
    """The WebUI hands over its own loaded network; the estimator feeds it the kind's input."""
    torch = pytest.importorskip("torch")

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(()))
            self.seen = None

        def forward(self, x):
            self.seen = tuple(x.shape)
            return x[:, 0] * self.w  # N,h,w "inverse depth": the normalised red channel

    probe = Probe()
    est = dp.DepthEstimator.from_module(probe, "midas_v21_small")
    rgb = np.zeros((512, 512, 3), np.uint8)
    rgb[:, 256:, 0] = 255  # right half red = "near"
    d = est(rgb)
    assert probe.seen == (1, 3, 256, 256)
    assert d.shape == (512, 512) and d.min() == 0.0 and d.max() == 1.0
    # away from the edge (bicubic resizes ring there, as in MiDaS) each half is flat, the red half nearer
    left, right = d[:, :200], d[:, 312:]
    assert np.ptp(left) < 1e-5 and np.ptp(right) < 1e-5 and right.min() > left.max() + 0.5
    with pytest.raises(SettingsError, match="unknown MiDaS model"):
        dp.DepthEstimator.from_module(probe, "dpt_huge")


# ------------------------------------------------------------------------------------ missing weights


def test_missing_weights_names_file_and_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(Vid2VidError) as e:
        dp.DepthEstimator.from_file(Path("models/midas"), "dpt_hybrid")
    msg = str(e.value)
    assert msg.startswith("models/midas/dpt_hybrid-midas-501f0c75.pt not found:")
    assert "MiDaS release page" in msg and "depth video" in msg and "\n" not in msg
    (tmp_path / "w").mkdir()
    with pytest.raises(Vid2VidError, match=r"w/midas_v21_small-70d6b9c8\.pt not found"):
        dp.load_model(tmp_path / "w", "midas_v21_small")
    with pytest.raises(Vid2VidError, match=r"midas_v21-f6b98070\.pt not found"):
        dp.DepthEstimator.from_file(tmp_path / "w" / "midas_v21-f6b98070.pt")


def test_kind_from_filename():
    assert dp.kind_from_filename("/x/dpt_large-midas-2f21e586.pt") == "dpt_large"
    assert dp.kind_from_filename("model.pt") is None
    with pytest.raises(SettingsError, match="cannot tell"):
        dp.DepthEstimator.from_file("model.pt")


# ---------------------------------------------------------------------------------------------- cache


class FakeEstimator:
    """``predict`` returns a known raw map per frame (value = row + offset * frame index) and counts calls."""

    def __init__(self, scale=1.0):
        self.calls = 0
        self.scale = scale

    def predict(self, rgb):
        self.calls += 1
        h, w = rgb.shape[:2]
        return (np.arange(h, dtype=np.float32)[:, None] * np.ones((1, w), np.float32)) * self.scale + float(rgb[0, 0, 0])


def test_cache_reuses_depth(tmp_path):
    est = FakeEstimator()
    cache = dp.DepthCache(tmp_path / "depth")
    f = np.zeros((64, 96, 3), np.uint8)
    d1 = cache.get(0, f, est)
    d2 = cache.get(0, f, est)
    assert est.calls == 1
    assert np.array_equal(d1, d2)
    np.testing.assert_allclose(d1[:, 0], np.arange(64) / 63, atol=1 / 65535)  # (row - 0) / (63 - 0)
    png = cv2.imread(str(tmp_path / "depth" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert png.dtype == np.uint16 and png[63, 0] == 65535 and png[0, 0] == 0
    # a new cache on the same folder (resume) reads it back without the model, byte for byte
    again = dp.DepthCache(tmp_path / "depth")
    assert again.has(0) and not again.has(1)
    assert np.array_equal(again.get(0, f, est), d1) and est.calls == 1


def test_cache_raw_round_trip_and_torn_log(tmp_path):
    cache = dp.DepthCache(tmp_path)
    raw = np.linspace(-3.0, 250.0, 64 * 96, dtype=np.float32).reshape(64, 96)
    cache.put(4, raw)
    np.testing.assert_allclose(dp.DepthCache(tmp_path).raw(4), raw, atol=253 / 131070 + 1e-4)
    with open(tmp_path / "depth.jsonl", "a") as fh:
        fh.write('{"i": 5, "s": [0, 1')  # interrupted write
    again = dp.DepthCache(tmp_path)
    assert again.has(4) and not again.has(5)
    # other percentiles: the bookkeeping does not apply, depth is computed again
    assert not dp.DepthCache(tmp_path, percentiles=(5, 95)).has(4)


def test_cache_normalisation_modes(tmp_path):
    """Frame i has raw range [lo_i, hi_i] = [0, 1], [0, 2], [-1, 1] (FakeEstimator scale / offset)."""
    ranges = [(0.0, 1.0), (0.0, 2.0), (-1.0, 1.0)]
    for mode in dp.NORMALISE_MODES:
        cache = dp.DepthCache(tmp_path / mode, normalise=mode, percentiles=(0, 100))
        for i, (lo, hi) in enumerate(ranges):
            cache.put(i, np.linspace(lo, hi, 11, dtype=np.float32).reshape(1, 11))
        got = [cache.range(i) for i in range(3)]
        want = {"frame": ranges, "running": [(0, 1), (0, 2), (-1, 2)], "job": [(-1, 2)] * 3}[mode]
        assert got == [tuple(map(float, w)) for w in want], mode
        d = cache.depth(1)  # raw 0..2
        lo, hi = want[1]
        np.testing.assert_allclose(d[0], np.clip((np.linspace(0, 2, 11) - lo) / (hi - lo), 0, 1), atol=1e-4)
    with pytest.raises(SettingsError):
        dp.DepthCache(tmp_path, normalise="global")


def test_cache_running_needs_earlier_frames(tmp_path):
    cache = dp.DepthCache(tmp_path, normalise="running")
    cache.put(2, np.zeros((2, 2), np.float32))
    with pytest.raises(Vid2VidError, match="needs frame 0's depth"):
        cache.depth(2)


def test_cache_fill(tmp_path):
    est = FakeEstimator()
    cache = dp.DepthCache(tmp_path, normalise="job")
    frames = [(i, np.full((8, 8, 3), 10 * i, np.uint8)) for i in range(3)]
    assert cache.fill(frames, est) == 3
    assert cache.fill(frames, est) == 0 and est.calls == 3
    lo, hi = cache.range(0)
    # frame i is rows 0..7 (8 pixels each) + 10 i: q2 sits at sorted position 0.02 * 63 = 1.26 -> 0 + 10 i,
    # q98 at 61.74 -> 7 + 10 i; the job range is (min q2, max q98) = (0, 27)
    assert (lo, hi) == (0.0, 27.0)


# ----------------------------------------------------------------------------------------- user depth


def test_depth_folder_source(tmp_path):
    for i in range(3):
        img = np.full((32, 48), 1000 * (i + 1), np.uint16)  # 16-bit keeps precision
        cv2.imwrite(str(tmp_path / f"depth_{i + 1:04d}.png"), img)
    (tmp_path / "notes.txt").write_text("not an image")
    src = dp.DepthSource.from_folder(tmp_path)
    assert src.count == 3
    d = src.get(1, (96, 64))  # resized to the frame size
    assert d.shape == (64, 96) and d.dtype == np.float32
    np.testing.assert_allclose(d, 2000 / 65535, atol=1e-6)
    src.check_count(3)
    with pytest.raises(Vid2VidError, match="has 3 frames but the clip has 4: frame 3 has no depth map"):
        src.check_count(4)
    with pytest.raises(Vid2VidError, match="frame 2 onward"):
        src.check_count(2)
    with pytest.raises(Vid2VidError, match="no depth map for frame 5"):
        src.get(5, (96, 64))


def test_depth_folder_gap_and_bad_aspect(tmp_path):
    cv2.imwrite(str(tmp_path / "000000.png"), np.full((32, 48), 255, np.uint8))
    cv2.imwrite(str(tmp_path / "000002.png"), np.zeros((32, 48), np.uint8))
    src = dp.DepthSource.from_folder(tmp_path)
    assert src.count == 1  # frame 1 missing: the run of frames stops there
    with pytest.raises(Vid2VidError, match="frame 1 has no depth map"):
        src.check_count(3)
    assert np.all(src.get(0, (48, 32)) == 1.0)
    with pytest.raises(Vid2VidError, match="aspect"):
        src.get(0, (48, 48))
    with pytest.raises(Vid2VidError, match="not found"):
        dp.DepthSource.from_folder(tmp_path / "nope")


def test_depth_video_source(tmp_path):
    from lib_vid2vid.video import encode_frames

    levels = [16, 80, 144, 208, 240]
    path = encode_frames((np.full((64, 96, 3), v, np.uint8) for v in levels), tmp_path / "depth.mp4", Fraction(10))
    src = dp.DepthSource.from_video(path)
    assert src.count == 5
    for k in (0, 3, 1, 4):  # out of order: seeks back
        d = src.get(k, (48, 32))
        assert d.shape == (32, 48)
        assert abs(float(d.mean()) - levels[k] / 255) < 3 / 255, k
    with pytest.raises(Vid2VidError, match="frame 5 has no depth map"):
        src.check_count(6)
    with pytest.raises(Vid2VidError, match="not found"):
        dp.DepthSource.from_video(tmp_path / "missing.mp4")


# -------------------------------------------------------------------------------------------- low-cut


def test_depth_mask_low_cut_hand_computed():
    d = np.array([[0.0, 0.5, 1.0, 128 / 255]], np.float32)
    assert dp.depth_mask(d, 128).tolist() == [[0, 0, 1, 1]]  # 0.5 * 255 = 127.5 < 128: far, kept
    assert dp.depth_mask(d, 0).tolist() == [[1, 1, 1, 1]]
    assert dp.depth_mask(d, 255).tolist() == [[0, 0, 1, 0]]
    for bad in (-1, 256):
        with pytest.raises(SettingsError, match="depth_low_cut"):
            dp.depth_mask(d, bad)


def test_depth_mask_low_cut_monotonic():
    d = np.random.default_rng(1).random((40, 50)).astype(np.float32)
    prev = dp.depth_mask(d, 0)
    for cut in range(1, 256, 5):
        m = dp.depth_mask(d, cut)
        assert m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
        assert np.all(m <= prev), cut  # a higher low-cut never lets more of the frame change
        prev = m
