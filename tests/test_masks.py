"""Motion, colour-key and user masks; fills; combining and overlay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lib_vid2vid import masks
from lib_vid2vid.errors import SettingsError, Vid2VidError


def _clip_pair(h=40, w=56, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-60, 61, (h, w, 3)), 0, 255).astype(np.uint8)
    return a, b


# ------------------------------------------------------------------------------------------------ motion


def test_motion_mask_hand_computed_luma_and_low_cut():
    prev = np.zeros((1, 4, 3), np.uint8)
    cur = np.array([[[10, 10, 10], [0, 0, 100], [255, 0, 0], [0, 0, 0]]], np.uint8)
    # |luma| = 10, 11.4, 76.245, 0 grey levels
    np.testing.assert_allclose(masks.delta_grey(prev, cur)[0], [10, 11.4, 76.245, 0], atol=1e-3)
    np.testing.assert_allclose(masks.delta_grey(cur, prev)[0], [10, 11.4, 76.245, 0], atol=1e-3)  # absolute
    assert masks.motion_mask(prev, cur, low_cut=11)[0].tolist() == [0, 1, 1, 0]
    assert masks.motion_mask(prev, cur, low_cut=12)[0].tolist() == [0, 0, 1, 0]
    assert masks.motion_mask(prev, cur, low_cut=10)[0].tolist() == [1, 1, 1, 0]  # inclusive
    assert masks.motion_mask(prev, cur, low_cut=0)[0].tolist() == [1, 1, 1, 1]
    assert masks.motion_mask(prev, cur, low_cut=255)[0].tolist() == [0, 0, 0, 0]


def test_high_ext_dilates_by_half_kernel():
    g = np.zeros((9, 9), np.float32)
    g[4, 4] = 100
    m = masks.motion_mask_from_grey(g, low_cut=50, high_ext=5)
    assert m.sum() == 25 and m[2:7, 2:7].all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_higher_low_cut_never_lets_more_change(seed):
    a, b = _clip_pair(seed=seed)
    for high_ext, soft in ((1, 0.0), (5, 0.0), (3, 1.5), (9, 3.0)):
        prev = None
        for low_cut in (0, 1, 5, 10, 20, 35, 50, 100, 200, 255):
            m = masks.motion_mask(a, b, low_cut=low_cut, high_ext=high_ext, soft=soft)
            assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
            if prev is not None:
                assert (m <= prev + 1e-6).all(), (low_cut, high_ext, soft)
            prev = m
    # and it is not trivially constant
    assert masks.motion_mask(a, b, low_cut=5).sum() > masks.motion_mask(a, b, low_cut=50).sum()


@pytest.mark.parametrize("seed", [0, 1])
def test_larger_high_ext_grows_mask_monotonically(seed):
    a, b = _clip_pair(seed=seed)
    for low_cut, soft in ((30, 0.0), (40, 2.0), (48, 0.0)):
        prev = None
        for k in range(1, 16, 2):
            m = masks.motion_mask(a, b, low_cut=low_cut, high_ext=k, soft=soft)
            if prev is not None:
                assert (m >= prev - 1e-6).all(), (k, low_cut, soft)
            prev = m
    small = masks.motion_mask(a, b, low_cut=45)
    assert 0 < small.sum() < masks.motion_mask(a, b, low_cut=45, high_ext=3).sum() < small.size


@pytest.mark.parametrize("kw", [{"high_ext": 2}, {"high_ext": 17}, {"high_ext": 0}, {"low_cut": 256},
                                {"low_cut": -1}, {"soft": -1.0}])
def test_motion_settings_out_of_range(kw):
    a, b = _clip_pair()
    with pytest.raises(SettingsError):
        masks.motion_mask(a, b, **kw)


# -------------------------------------------------------------------------------------------- colour key


def test_colour_key_selects_exactly_the_range_inclusive():
    rs, gs, bs = [89, 90, 100, 110, 111], [149, 150, 151], [194, 195, 205, 206]
    px = np.array([(r, g, b) for r in rs for g in gs for b in bs], np.uint8).reshape(1, -1, 3)
    m = masks.colour_key_mask(px, (100, 150, 200), (10, 0, 5))
    want = ((np.abs(px[0].astype(int) - [100, 150, 200]) <= [10, 0, 5]).all(axis=1)).astype(np.float32)
    np.testing.assert_array_equal(m[0], want)
    assert want.sum() == 3 * 1 * 2  # R in 90..110 (3 values), G == 150, B in 195..205 (2 values)


def test_colour_key_range_is_clamped_at_0_and_255_and_scalar_range():
    # target (250, 5, 128) +- 6: R 244..255, G 0..11, B 122..134
    px = np.array([[[255, 0, 128], [245, 10, 128], [243, 0, 128], [255, 12, 128], [244, 11, 134],
                    [250, 5, 135]]], np.uint8)
    assert masks.colour_key_mask(px, (250, 5, 128), 6)[0].tolist() == [1, 1, 0, 0, 1, 0]


@pytest.mark.parametrize("target,tol", [((1, 2), 3), ((0, 0, 300), 3), ((0, 0, 0), -1), ((0, 0, 0), (1, 2))])
def test_colour_key_bad_settings(target, tol):
    with pytest.raises(SettingsError):
        masks.colour_key_mask(np.zeros((2, 2, 3), np.uint8), target, tol)


def _keyed_frame():
    rng = np.random.default_rng(4)
    f = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    f[8:20, 10:22] = (0, 255, 0)
    return f, masks.colour_key_mask(f, (0, 255, 0), 0)


@pytest.mark.parametrize("method,kw", [("noise", {"noise_level": 1.0}), ("noise", {"noise_level": 0.3}),
                                       ("telea", {"radius": 3}), ("ns", {"radius": 5})])
def test_fills_change_only_masked_pixels(method, kw):
    f, m = _keyed_frame()
    assert m.sum() >= 144
    out = masks.fill_masked(f, m, method, **kw)
    assert out.dtype == np.uint8 and out.shape == f.shape
    outside = m == 0
    np.testing.assert_array_equal(out[outside], f[outside])
    changed = np.any(out != f, axis=2)
    assert changed[m > 0].mean() > 0.9  # the green block is really filled


def test_fill_none_and_zero_noise_are_identity_and_noise_is_seeded():
    f, m = _keyed_frame()
    np.testing.assert_array_equal(masks.fill_masked(f, m, "none"), f)
    np.testing.assert_array_equal(masks.fill_masked(f, m, "noise", noise_level=0.0), f)
    a = masks.fill_masked(f, m, "noise", seed=7)
    np.testing.assert_array_equal(a, masks.fill_masked(f, m, "noise", seed=7))
    assert not np.array_equal(a, masks.fill_masked(f, m, "noise", seed=8))
    with pytest.raises(SettingsError, match="colour_key_fill"):
        masks.fill_masked(f, m, "blur")
    with pytest.raises(SettingsError, match="colour_key_noise"):
        masks.fill_masked(f, m, "noise", noise_level=1.5)


# -------------------------------------------------------------------------------------------- user masks


def _save_grey(path: Path, arr: np.ndarray) -> Path:
    Image.fromarray(arr.astype(np.uint8), "L").save(path)
    return path


def _pattern(k: int, h=16, w=32) -> np.ndarray:
    """Frame k's mask: white columns 4k .. 4k+3."""
    a = np.zeros((h, w), np.uint8)
    a[:, 4 * k: 4 * k + 4] = 255
    return a


def test_folder_matches_last_number_and_starts_at_smallest(tmp_path):
    for n in (1, 2, 3):
        _save_grey(tmp_path / f"shot2_{n:06d}.png", _pattern(n - 1))
    (tmp_path / "notes.txt").write_text("ignored")
    _save_grey(tmp_path / "cover.png", np.zeros((16, 32)))  # no digits: ignored
    src = masks.UserMaskSource("folder", tmp_path)
    for k in range(3):
        np.testing.assert_array_equal(src.get(k, (32, 16)), _pattern(k) / 255.0)
    with pytest.raises(Vid2VidError) as e:
        src.get(3, (32, 16))
    msg = str(e.value)
    assert "frame 3" in msg and "numbered 4" in msg and str(tmp_path) in msg and "\n" not in msg
    explicit = masks.UserMaskSource("folder", tmp_path, start_number=0)
    np.testing.assert_array_equal(explicit.get(1, (32, 16)), _pattern(0) / 255.0)  # 000001 is frame 1 now
    with pytest.raises(Vid2VidError, match="frame 0 missing"):
        explicit.get(0, (32, 16))


def test_folder_duplicate_numbers_and_empty_folder(tmp_path):
    _save_grey(tmp_path / "1.png", _pattern(0))
    _save_grey(tmp_path / "0001.png", _pattern(0))
    with pytest.raises(Vid2VidError, match="both have number 1"):
        masks.UserMaskSource("folder", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(Vid2VidError, match="no numbered images"):
        masks.UserMaskSource("folder", empty)


def test_single_image_threshold_invert_blur(tmp_path):
    grey = np.array([[0, 127, 128, 255]], np.uint8)
    p = _save_grey(tmp_path / "m.png", grey)
    assert masks.UserMaskSource("image", p).get(5, (4, 1)).tolist() == [[0, 0, 1, 1]]
    assert masks.UserMaskSource("image", p, invert=True).get(0, (4, 1)).tolist() == [[1, 1, 0, 0]]
    assert masks.UserMaskSource("image", p, threshold=0).get(0, (4, 1)).tolist() == [[1, 1, 1, 1]]
    np.testing.assert_allclose(masks.UserMaskSource("image", p, threshold=None).get(0, (4, 1)), grey / 255, atol=1e-6)
    blurred = masks.UserMaskSource("image", p, blur=1.0).get(0, (4, 1))
    assert 0 < blurred[0, 1] < 1 and blurred[0, 0] < blurred[0, 3]


def test_image_is_resized_to_frame_size_but_other_aspect_is_an_error(tmp_path):
    big = np.zeros((32, 64), np.uint8)
    big[:, 32:] = 255
    p = _save_grey(tmp_path / "m.png", big)
    m = masks.UserMaskSource("image", p).get(0, (32, 16))  # half size, same aspect
    assert m.shape == (16, 32) and m[:, :16].max() == 0 and m[:, 16:].min() == 1
    up = masks.UserMaskSource("image", p).get(0, (128, 64))
    assert up.shape == (64, 128) and up[:, :62].max() == 0 and up[:, 66:].min() == 1
    with pytest.raises(Vid2VidError) as e:
        masks.UserMaskSource("image", p).get(0, (32, 32))
    assert "64x32" in str(e.value) and "32x32" in str(e.value) and "aspect" in str(e.value)


def _write_video(path: Path, frames: list[np.ndarray], rgba: bool = False) -> Path:
    import av

    fmt = "rgba" if rgba else "rgb24"
    with av.open(str(path), "w") as c:
        s = c.add_stream("png", rate=10)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], fmt
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format=fmt)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_mask_video_frame_k_and_seeking_back(tmp_path):
    frames = [np.repeat(_pattern(k)[:, :, None], 3, axis=2) for k in range(5)]
    src = masks.UserMaskSource("video", _write_video(tmp_path / "m.mov", frames))
    for k in (0, 1, 3, 2, 4, 4):  # forward, skip, back (reopens), repeat
        np.testing.assert_array_equal(src.get(k, (32, 16)), _pattern(k) / 255.0)
    with pytest.raises(Vid2VidError, match="has 5 frames but frame 5"):
        src.get(5, (32, 16))
    src.close()


def test_alpha_from_frame_from_rgba_png_and_from_video(tmp_path):
    rgba = np.zeros((16, 32, 4), np.uint8)
    rgba[..., 3] = _pattern(2)
    src = masks.UserMaskSource("alpha")
    np.testing.assert_array_equal(src.get(0, (32, 16), alpha=rgba), _pattern(2) / 255.0)
    np.testing.assert_array_equal(src.get(0, (32, 16), alpha=rgba[..., 3]), _pattern(2) / 255.0)
    with pytest.raises(Vid2VidError, match="alpha"):
        src.get(0, (32, 16))
    with pytest.raises(Vid2VidError, match="no alpha"):
        src.get(0, (32, 16), alpha=rgba[..., :3])
    png = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(png)
    np.testing.assert_array_equal(masks.UserMaskSource("alpha", png).get(9, (32, 16)), _pattern(2) / 255.0)
    rgb = tmp_path / "rgb.png"
    Image.fromarray(rgba[..., :3], "RGB").save(rgb)
    with pytest.raises(Vid2VidError, match="has no alpha channel"):
        masks.UserMaskSource("alpha", rgb)
    vframes = []
    for k in range(3):
        f = np.full((16, 32, 4), 90, np.uint8)
        f[..., 3] = _pattern(k)
        vframes.append(f)
    vsrc = masks.UserMaskSource("alpha", _write_video(tmp_path / "a.mov", vframes, rgba=True))
    np.testing.assert_array_equal(vsrc.get(1, (32, 16)), _pattern(1) / 255.0)
    vsrc.close()
    with pytest.raises(Vid2VidError, match="has no alpha channel"):
        masks.UserMaskSource("alpha", _write_video(tmp_path / "rgb.mov", [f[..., :3].copy() for f in vframes]))


def test_bad_user_mask_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "000001.png").write_bytes(b"not a png at all")
    errors = []
    with pytest.raises(Vid2VidError) as e:
        masks.UserMaskSource("folder", tmp_path).get(0, (8, 8))
    errors.append(str(e.value))
    assert "cannot read mask image" in errors[-1] and "000001.png" in errors[-1]
    with pytest.raises(Vid2VidError) as e:
        masks.UserMaskSource("image", tmp_path / "000001.png")
    errors.append(str(e.value))
    with pytest.raises(Vid2VidError) as e:
        masks.UserMaskSource("image", tmp_path / "missing.png")
    errors.append(str(e.value))
    assert "not found" in errors[-1]
    bad_video = tmp_path / "bad.mp4"
    bad_video.write_bytes(b"\x00" * 100)
    with pytest.raises(Vid2VidError) as e:
        masks.UserMaskSource("video", bad_video).get(0, (8, 8))
    errors.append(str(e.value))
    assert "cannot read mask video" in errors[-1]
    with pytest.raises(SettingsError) as e:
        masks.UserMaskSource("folder", tmp_path, threshold=300)
    errors.append(str(e.value))
    with pytest.raises(SettingsError) as e:
        masks.UserMaskSource("webcam", tmp_path)
    errors.append(str(e.value))
    assert all("\n" not in msg for msg in errors)


def test_mask_video_playlist_cannot_open_other_files(tmp_path):
    """A concat list given as a mask video is refused: FFmpeg would otherwise open the files it names."""
    import av

    _write_video(tmp_path / "real.mov", [np.full((16, 32, 3), 200, np.uint8)] * 2)
    listing = tmp_path / "mask.ffconcat"
    listing.write_text("ffconcat version 1.0\nfile real.mov\n")
    with av.open(str(listing)) as c:  # the danger is real: plain FFmpeg follows the list
        assert sum(1 for _ in c.decode(video=0)) == 2
    with pytest.raises(Vid2VidError) as e:
        masks.UserMaskSource("video", listing).get(0, (32, 16))
    assert "cannot read mask video" in str(e.value) and "\n" not in str(e.value)
    apng = tmp_path / "mask.apng"
    Image.fromarray(_pattern(1)).save(apng, format="PNG", save_all=True,
                                      append_images=[Image.fromarray(_pattern(2))])
    src = masks.UserMaskSource("video", apng)  # an animated PNG is a legitimate mask video
    np.testing.assert_array_equal(src.get(1, (32, 16)), _pattern(2) / 255.0)
    src.close()


# ---------------------------------------------------------------------------------------------- combine


def test_combine_masks_rules():
    motion = np.array([[1.0, 1.0, 0.5, 0.0]], np.float32)
    depth = np.array([[1.0, 0.5, 0.5, 1.0]], np.float32)
    user = np.array([[1.0, 1.0, 0.4, 1.0]], np.float32)
    key = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)
    np.testing.assert_allclose(masks.combine_masks(motion, depth, user), [[1.0, 0.5, 0.1, 0.0]])
    np.testing.assert_allclose(masks.combine_masks(motion, depth, user, how="min"), [[1.0, 0.5, 0.4, 0.0]])
    np.testing.assert_allclose(masks.combine_masks(motion, depth, user, key), [[1.0, 1.0, 0.1, 1.0]])
    np.testing.assert_allclose(masks.combine_masks(motion, depth, user, key, colour_key_op="remove"),
                               [[1.0, 0.0, 0.1, 0.0]])
    np.testing.assert_allclose(masks.combine_masks(colour_key=key, colour_key_op="remove"), [[1.0, 0.0, 1.0, 0.0]])
    np.testing.assert_allclose(masks.combine_masks(user=user), user)
    assert masks.combine_masks() is None
    with pytest.raises(Vid2VidError, match="differ in size"):
        masks.combine_masks(motion, np.ones((2, 2), np.float32))
    with pytest.raises(SettingsError):
        masks.combine_masks(motion, how="max")


def test_mask_overlay_paints_only_masked_pixels():
    f = np.full((8, 8, 3), 100, np.uint8)
    m = np.zeros((8, 8), np.float32)
    m[:, :4] = 1
    out = masks.mask_overlay(f, {"motion": m, "depth": None}, opacity=0.5, legend=False)
    np.testing.assert_array_equal(out[:, 4:], f[:, 4:])
    np.testing.assert_array_equal(out[0, 0], np.rint(np.array([100, 100, 100]) * 0.5
                                                      + np.array(masks.OVERLAY_COLOURS["motion"]) * 0.5))
    with_legend = masks.mask_overlay(np.zeros((60, 120, 3), np.uint8), {"motion": None})
    assert with_legend.any()  # the legend text is drawn
