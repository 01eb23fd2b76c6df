"""The settings model: one definition feeding the manifest, CLI flags and API argument order."""

import argparse
import json

import pytest

from lib_vid2vid import params
from lib_vid2vid.errors import SettingsError
from lib_vid2vid.params import SPECS, Settings


def test_every_setting_has_help_default_and_a_valid_default():
    s = Settings()
    s.validate()
    for spec in SPECS:
        assert spec.help.strip(), spec.name
        assert isinstance(s.get(spec.name), spec.type), spec.name


def test_manifest_round_trip_is_lossless_and_json():
    s = Settings().replace(fps=12, denoise=0.3, init_mode="flow_warp", prompt="a cat", keyframe_mode="off")
    d = json.loads(json.dumps(s.to_dict()))
    assert Settings.from_dict(d) == s
    assert d["fps"] == 12.0 and d["init_mode"] == "flow_warp"


def test_replace_does_not_mutate_the_base():
    base = Settings()
    changed = base.replace(steps=30)
    assert base.sampling.steps == 20 and changed.sampling.steps == 30


@pytest.mark.parametrize(
    "name,value,fragment",
    [
        ("denoise", 1.5, "above the maximum 1"),
        ("steps", 0, "below the minimum 1"),
        ("steps", 2.5, "not a whole number"),
        ("fps", "fast", "not a number"),
        ("fps", float("nan"), "not a number"),
        ("resize_mode", "zoom", "not one of"),
        ("width", 100, "multiple of 8"),
        ("width", 32, "multiple of 8 from 64"),
        ("motion_high_ext", 4, "odd"),
        ("temporal_weights", "1,2", "odd number"),
        ("temporal_weights", "1,x,1", "comma-separated"),
        ("no_such_setting", 1, "unknown setting"),
    ],
)
def test_bad_values_name_the_field(name, value, fragment):
    with pytest.raises(SettingsError) as err:
        Settings().replace(**{name: value})
    assert err.value.field == name
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_end_must_follow_start():
    with pytest.raises(SettingsError, match="after start"):
        Settings().replace(start=5, end=2)


def test_api_args_follow_ui_order_and_short_lists_keep_defaults():
    names = params.api_arg_names()
    assert names == [s.name for s in SPECS if s.ui]
    assert "prompt" not in names  # supplied by the img2img tab itself
    values = {"fps": 8.0, "start": 1.0}
    args = [values.get(n, Settings().get(n)) for n in names[:3]]
    s = params.settings_from_api_args(args)
    assert s.video.fps == 8.0 and s.video.start == 1.0
    with pytest.raises(SettingsError, match="at most"):
        params.settings_from_api_args([None] * (len(names) + 1))


def test_api_args_are_validated_like_ui_input():
    names = params.api_arg_names()
    args = [Settings().get(n) for n in names]
    args[names.index("resize_mode")] = "bogus"
    with pytest.raises(SettingsError, match="resize_mode"):
        params.settings_from_api_args(args)


def test_cli_flags_come_from_the_specs():
    ap = argparse.ArgumentParser()
    params.add_cli_arguments(ap)
    flags = {a for act in ap._actions for a in act.option_strings}
    for spec in SPECS:
        assert (spec.flag in flags) == spec.cli, spec.name
    ns = ap.parse_args(["--fps", "12", "--no-keep-audio", "--init-mode", "temporal_blend", "--steps", "9"])
    s = params.settings_from_cli(ns)
    assert (s.video.fps, s.export.keep_audio, s.temporal.init_mode, s.sampling.steps) == (12.0, False,
                                                                                        "temporal_blend", 9)
    assert s.sampling.cfg_scale == Settings().sampling.cfg_scale


def test_cli_rejects_out_of_range_with_field_message(capsys):
    ap = argparse.ArgumentParser()
    params.add_cli_arguments(ap)
    for value, message in (("3", "3 is above the maximum 1"), ("nan", "'nan' is not a number"),
                           ("x", "'x' is not a number")):
        with pytest.raises(SystemExit):
            ap.parse_args(["--denoise", value])
        assert f"argument --denoise: {message}" in capsys.readouterr().err


def test_strategies_are_valid_settings():
    for _name, values in params.STRATEGIES.items():
        Settings().replace(**values)


def test_tabs_in_pipeline_order():
    """vid2vid's tabs in pipeline order, Jobs last; then the image-to-video mode's own tab (its settings come
    last in the API's script_args, so every earlier position stays where it was)."""
    tabs = [t for t, _ in params.iter_tabs()]
    assert tabs[0] == "Video" and tabs[-2:] == ["Jobs", "Image to video"]
    names = params.api_arg_names()
    svd = params.svd_setting_names()
    assert names[-len(svd):] == svd and svd[0] == "svd_mode"


def test_the_webui_image_to_video_settings_mirror_the_cli_ones():
    """The mode's svd_* settings are Img2VidSettings' (same defaults, ranges, help), shown only while the mode
    is on, never CLI flags of a vid2vid job; the WebUI supplies seed and job folder."""
    by_name = {s.name: s for s in params.IMG2VID_SPECS}
    mirrored = [n for n in params.svd_setting_names() if n not in ("svd_mode", "svd_images")]
    assert {n[4:] for n in mirrored} == set(by_name) - set(params.SVD_FROM_HOST)
    for name in mirrored:
        spec, own = params.SPEC_BY_NAME[name], by_name[name[4:]]
        assert (spec.default, spec.min, spec.max, spec.choices, spec.help) == (
            own.default, own.min, own.max, own.choices, own.help)
        assert not spec.cli and spec.ui
        assert not params.applies(spec, {}) and params.applies(spec, {"svd_mode": True})
    s = Settings().replace(svd_mode=True, svd_frames=40, svd_width=512, svd_height=320, svd_steps=3)
    i2v = params.img2vid_settings_from_webui(s, seed=9, output_dir="/x/img2vid")
    assert (i2v.frames, i2v.width, i2v.height, i2v.steps, i2v.seed, i2v.output_dir) == (
        40, 512, 320, 3, 9, "/x/img2vid")
    with pytest.raises(SettingsError, match=r"^svd_width: 500 px: use a multiple of 64"):
        params.img2vid_settings_from_webui(s.replace(svd_width=500), seed=9, output_dir="x")
    with pytest.raises(SettingsError, match=r"^svd_background_colour: "):
        params.img2vid_settings_from_webui(s.replace(svd_background_colour="blue"), seed=9, output_dir="x")


def test_defaults_are_the_keyframes_adaptive_strategy():
    """The benchmark's steadiest strategy, keyframes_adaptive, is what a user gets without tuning; "recommended"
    names it, and every_frame keeps the old default (every frame rendered)."""
    defaults = Settings()
    for name, value in params.STRATEGIES["keyframes_adaptive"].items():
        assert defaults.get(name) == value, name
    assert params.default_strategy() == "keyframes_adaptive"
    assert params.strategy("recommended") == params.STRATEGIES["keyframes_adaptive"]
    assert params.strategy("every_frame")["keyframe_mode"] == "off"
    assert Settings().replace(**params.strategy("every_frame")).temporal.colour_coherence
    with pytest.raises(KeyError):
        params.strategy("no such preset")


def test_every_numeric_setting_rejects_non_finite_values_in_cli_api_and_ui(capsys):
    ap = argparse.ArgumentParser()
    params.add_cli_arguments(ap)
    numeric = [s for s in SPECS if s.type in (int, float)]
    assert len(numeric) > 30
    for spec in numeric:
        for bad in ("nan", "inf", "-inf"):
            if spec.cli:
                with pytest.raises(SystemExit):
                    ap.parse_args([f"{spec.flag}={bad}"])
                assert f"argument {spec.flag}: " in capsys.readouterr().err
            with pytest.raises(SettingsError) as err:  # what the UI and the API go through
                Settings.from_dict({spec.name: float(bad)})
            assert err.value.field == spec.name
