"""Frame delta correction: each statistic mode on hand-computed arrays, masks, rounding, debug panel."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lib_vid2vid import fdc
from lib_vid2vid.debug_panels import LABEL_HEIGHT, fdc_debug_panel, visualise_delta
from lib_vid2vid.errors import SettingsError, Vid2VidError

# Two pixels (1 x 2), three channels. d = B - A and t per channel:
#   R: A 0.5, d [0.1, 0.3],   t [0.0, 0.1]    mean d 0.2, std d 0.1; mean t 0.05, std t 0.05
#   G: A 0.5, d [-0.2, 0.2],  t [-0.4, 0.4]   mean 0, std d 0.2; std t 0.4 (scale 2)
#   B: A 0.8, d [0.15, -0.25], t = d          every mode leaves it unchanged
A = np.array([[[0.5, 0.5, 0.8], [0.5, 0.5, 0.8]]], np.float32)
D = np.array([[[0.1, -0.2, 0.15], [0.3, 0.2, -0.25]]], np.float32)
T = np.array([[[0.0, -0.4, 0.15], [0.1, 0.4, -0.25]]], np.float32)
B = A + D

EXPECTED = {
    # R: A + d
    "none": [[0.6, 0.3, 0.95], [0.8, 0.7, 0.55]],
    # R: d clipped to [0, 0.1] -> [0.1, 0.1]; G: d inside [-0.4, 0.4]
    "clip": [[0.6, 0.3, 0.95], [0.6, 0.7, 0.55]],
    # R: d - 0.2 + 0.05 = [-0.05, 0.15]; G: means 0 -> unchanged
    "mean": [[0.45, 0.3, 0.95], [0.65, 0.7, 0.55]],
    # R: (d - 0.2) * 0.5 + 0.2 = [0.15, 0.25]; G: d * 2 = [-0.4, 0.4]
    "std": [[0.65, 0.1, 0.95], [0.75, 0.9, 0.55]],
    # R: (d - 0.2) * 0.5 + 0.05 = [0.0, 0.1]; G: d * 2 + 0
    "mean_std": [[0.5, 0.1, 0.95], [0.6, 0.9, 0.55]],
}


@pytest.mark.parametrize("mode", fdc.MODES)
def test_each_mode_matches_hand_computed(mode):
    out = fdc.correct(A, B, T, mode=mode)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out[0], np.array(EXPECTED[mode], np.float32), atol=1e-6)


def test_output_is_clipped_to_0_1():
    a = np.array([[[0.9, 0.9, 0.9], [0.5, 0.1, 0.5]]], np.float32)
    t = np.full_like(a, 0.2)
    t[0, 1, 1] = -0.2  # G: mean t 0, std t 0.2
    # mean mode, B == A: c = 0 - 0 + mean(t) = 0.2 for R and B; G gets mean 0
    out = fdc.correct(a, a.copy(), t, mode="mean")
    np.testing.assert_allclose(out[0], [[1.0, 0.9, 1.0], [0.7, 0.1, 0.7]], atol=1e-6)


def test_flat_delta_std_mode_keeps_mean_only():
    a = np.full((1, 2, 3), 0.5, np.float32)
    b = a + 0.1
    t = np.array([[[0.0, 0.0, 0.0], [0.2, 0.2, 0.2]]], np.float32)
    np.testing.assert_allclose(fdc.correct(a, b, t, mode="std")[0], 0.6, atol=1e-6)  # c = mean d
    np.testing.assert_allclose(fdc.correct(a, b, t, mode="mean_std")[0], 0.6, atol=1e-6)  # c = mean t = 0.1


def test_delta_and_spatial_mask_formulas():
    a = np.full((1, 3, 3), 0.2, np.float32)
    b = np.full((1, 3, 3), 0.8, np.float32)
    t = np.zeros_like(a)
    m = np.array([[0.0, 0.5, 1.0]], np.float32)
    want = np.array([0.2, 0.5, 0.8], np.float32)[:, None]  # A + (B - A) * M
    np.testing.assert_allclose(fdc.correct(a, b, t, mode="none", delta_mask=m)[0], np.repeat(want, 3, 1), atol=1e-6)
    np.testing.assert_allclose(fdc.correct(a, b, t, mode="none", spatial_mask=m)[0], np.repeat(want, 3, 1), atol=1e-6)
    np.testing.assert_allclose(fdc.apply_delta_mask(a, b, m)[0], np.repeat(want, 3, 1), atol=1e-6)
    # both: delta then spatial = A + Md * Ms * (B - A) = 0.2 + 0.25 * 0.6
    half = np.full((1, 3), 0.5, np.float32)
    np.testing.assert_allclose(fdc.correct(a, b, t, mode="none", delta_mask=half, spatial_mask=half), 0.35, atol=1e-6)


def test_inpaint_mask_is_uint8_white_repaint():
    m = np.array([[0.0, 0.5, 1.0, 1.2]], np.float32)
    np.testing.assert_array_equal(fdc.inpaint_mask(m), np.array([[0, 128, 255, 255]], np.uint8))


@pytest.mark.parametrize("mode", fdc.MODES)
def test_correct_frame_uint8_equals_float_path_rounded(mode):
    rng = np.random.default_rng(3)
    prev_out, new_out, sp, sc = (rng.integers(0, 256, (16, 20, 3), dtype=np.uint8) for _ in range(4))
    dm = rng.random((16, 20), dtype=np.float32)
    sm = rng.random((16, 20), dtype=np.float32)
    t = fdc.source_delta(sp, sc)
    ref = fdc.correct(fdc.to_float(prev_out), fdc.to_float(new_out), t, mode=mode, delta_mask=dm, spatial_mask=sm)
    got = fdc.correct_frame(prev_out, new_out, sp, sc, mode=mode, delta_mask=dm, spatial_mask=sm)
    assert got.dtype == np.uint8 and got.shape == prev_out.shape
    diff = np.abs(got.astype(int) - np.rint(ref * 255).astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.01


@pytest.mark.parametrize("mode", ["mean", "mean_std"])
def test_open_loop_modes_do_not_drift_when_stored_as_uint8(mode):
    # Static source with sensor noise, renderer = fixed frame + noise: mean/mean_std pin the output level
    # to A's plus the source's. Rounding each uint8 round trip makes the level random-walk (the
    # per-channel offset is common to all pixels, so its rounding error does not average out: ~0.3
    # level per frame, ~2 levels after 60 frames); truncating instead drifts by ~0.5 level per frame,
    # -30 levels here. The bound separates the two.
    rng = np.random.default_rng(0)
    frame = rng.integers(40, 216, (32, 32, 3), dtype=np.uint8)
    src = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    a, sp = frame, src
    for _ in range(60):
        b = np.clip(frame + rng.normal(0, 6, frame.shape), 0, 255).astype(np.uint8)
        sc = np.clip(src + rng.normal(0, 2, src.shape), 0, 255).astype(np.uint8)
        a = fdc.correct_frame(a, b, sp, sc, mode=mode)
        sp = sc
    # the level may only follow the source's own level change (the mean of t telescopes)
    source_change = float(sp.mean()) - float(src.mean())
    assert abs(float(a.mean()) - float(frame.mean()) - source_change) < 4.0


def test_results_are_not_shared_scratch_buffers():
    rng = np.random.default_rng(1)
    f = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(4)]
    first = fdc.correct_frame(*f, mode="mean_std")
    kept = first.copy()
    fdc.correct_frame(f[1], f[0], f[3], f[2], mode="mean_std")
    np.testing.assert_array_equal(first, kept)
    r1 = fdc.correct(fdc.to_float(f[0]), fdc.to_float(f[1]), fdc.source_delta(f[2], f[3]), mode="clip")
    k1 = r1.copy()
    fdc.correct(fdc.to_float(f[1]), fdc.to_float(f[0]), fdc.source_delta(f[3], f[2]), mode="clip")
    np.testing.assert_array_equal(r1, k1)


def test_bad_inputs_give_one_line_errors():
    a = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(SettingsError, match="fdc_mode: unknown mode 'avg'") as e:
        fdc.correct_frame(a, a, a, a, mode="avg")
    assert "\n" not in str(e.value)
    with pytest.raises(Vid2VidError, match="differ in size"):
        fdc.correct_frame(a, np.zeros((4, 5, 3), np.uint8), a, a, mode="none")
    with pytest.raises(Vid2VidError, match="source delta"):
        fdc.correct_frame(a, a, np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 3), np.uint8), mode="none")
    with pytest.raises(Vid2VidError, match="mask is 3x4 but the frame is 4x4"):
        fdc.correct_frame(a, a, a, a, mode="none", delta_mask=np.zeros((4, 3), np.float32))
    with pytest.raises(Vid2VidError, match="uint8"):
        fdc.correct_frame(a.astype(np.float32), a, a, a, mode="none")


# ------------------------------------------------------------------------------------------ debug panel


def _frames(h=32, w=48):
    rng = np.random.default_rng(5)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(5)]


def test_visualise_delta_grey_is_no_change():
    f = _frames()[0]
    np.testing.assert_array_equal(visualise_delta(f, f), np.full_like(f, 128))  # round(0.5 * 255) half-even


def test_fdc_debug_panel_layout_and_tiles():
    sp, sc, po, ro, co = _frames()
    m = np.zeros((32, 48), np.float32)
    m[:, :24] = 1
    panel = fdc_debug_panel(sp, sc, po, ro, co, m, None, labels=True)
    th = 32 + LABEL_HEIGHT
    assert panel.dtype == np.uint8 and panel.shape == (2 * th + 4, 3 * 48 + 8, 3)
    # tile positions: (row, col) -> image
    np.testing.assert_array_equal(panel[LABEL_HEIGHT:th, 0:48], sc)
    np.testing.assert_array_equal(panel[th + 4 + LABEL_HEIGHT:, 52:100], ro)
    np.testing.assert_array_equal(panel[th + 4 + LABEL_HEIGHT:, 104:152], co)
    motion_tile = panel[LABEL_HEIGHT:th, 104:152]
    assert (motion_tile[:, :24] == 255).all() and (motion_tile[:, 24:] == 0).all()
    depth = np.full((32, 48), 0.5, np.float32)
    with_depth = fdc_debug_panel(sp, sc, po, ro, co, m, depth, labels=False)
    np.testing.assert_array_equal(with_depth[36:68, 0:48], np.full((32, 48, 3), 128, np.uint8))
    no_depth = fdc_debug_panel(sp, sc, po, ro, co, m, None, labels=False)
    assert not np.array_equal(no_depth[36:68, 0:48], with_depth[36:68, 0:48])  # "no depth" placeholder
    with pytest.raises(Vid2VidError, match="depth_mask"):
        fdc_debug_panel(sp, sc, po, ro, co, m, np.zeros((3, 3), np.float32))


def _write_png(path: Path, rgb: np.ndarray) -> Path:
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def _write_video(path: Path, frames: list[np.ndarray]) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("png", rate=10)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgb24"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def _load_cli():
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root / "helpers"))
    try:
        import fdc_debug
    finally:
        sys.path.pop(0)
    return fdc_debug


def test_fdc_debug_cli_images_and_video(tmp_path, capsys):
    cli = _load_cli()
    sp, sc, po, ro, _ = _frames()
    args = ["--prev-out", str(_write_png(tmp_path / "a.png", po)), "--raw-out", str(_write_png(tmp_path / "b.png", ro)),
            "--mode", "mean_std", "--high-ext", "3", "--mask-use", "delta"]
    out = tmp_path / "panel.png"
    assert cli.main(["--src-prev", str(_write_png(tmp_path / "p.png", sp)),
                     "--src-cur", str(_write_png(tmp_path / "c.png", sc)), *args, "--out", str(out)]) == 0
    panel = cv2.imread(str(out))
    assert panel.shape == (2 * (32 + LABEL_HEIGHT) + 4, 3 * 48 + 8, 3)
    video = _write_video(tmp_path / "src.mov", [sp, sc, po])
    out2 = tmp_path / "panel2.png"
    assert cli.main(["--video", str(video), "--frame", "1", *args, "--out", str(out2)]) == 0
    np.testing.assert_array_equal(cv2.imread(str(out2)), panel)  # frames 0, 1 of the video == sp, sc
    assert cli.main(["--video", str(video), "--frame", "7", *args, "--out", str(out2)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "fewer than 8 frames" in err and "\n" not in err
