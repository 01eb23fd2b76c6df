"""The HTTP renderer against a local stand-in of the WebUI API."""

import base64
import os
import socket
import threading
import time

import numpy as np
import pytest

from lib_vid2vid.errors import RendererError
from lib_vid2vid.host.webui_api import (
    MIB,
    REPLY_BASE_BYTES,
    WebUIApiRenderer,
    decode_image,
    encode_image,
    reply_limit,
)
from lib_vid2vid.renderer import RenderRequest
from tests.fake_webui import Drip, FakeWebUI, Flood, garbage, json_reply, raw_reply, redirect


def _req(**kw):
    init = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    base = dict(init=init, seed=7, denoise=0.4, steps=12, cfg=6.5, prompt="oil painting", negative_prompt="blurry",
                extra={"sampler": "Euler a", "scheduler": "Karras"})
    base.update(kw)
    return RenderRequest(**base)


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_image_codec_round_trip_is_lossless():
    img = np.random.default_rng(1).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_image(img)), img)


def test_payload_carries_every_setting_and_the_reply_is_decoded():
    with FakeWebUI() as ui:
        r = WebUIApiRenderer(ui.url)
        r.check()
        req = _req(batch_size=2, subseed=9, subseed_strength=0.25, mask=np.ones((64, 96), np.float32))
        out = r.render(req)
        p = ui.payloads[0]
    assert len(out) == 2 and out[0].shape == (64, 96, 3)
    expected = (req.init.astype(np.float32) * 0.8).astype(np.uint8)
    assert np.array_equal(out[0], expected)
    assert (p["seed"], p["subseed"], p["subseed_strength"]) == (7, 9, 0.25)
    assert (p["steps"], p["cfg_scale"], p["denoising_strength"]) == (12, 6.5, 0.4)
    assert (p["width"], p["height"], p["batch_size"]) == (96, 64, 2)
    assert (p["prompt"], p["negative_prompt"]) == ("oil painting", "blurry")
    assert (p["sampler_name"], p["scheduler"]) == ("Euler a", "Karras")
    assert "mask" in p and p["inpainting_fill"] == 1
    assert p["save_images"] is False


def test_unreachable_webui_is_one_clear_line():
    r = WebUIApiRenderer(f"http://127.0.0.1:{_free_port()}", timeout=5)
    with pytest.raises(RendererError) as err:
        r.render(_req())
    msg = str(err.value)
    assert "Cannot reach the WebUI" in msg and "--api" in msg and "\n" not in msg
    with pytest.raises(RendererError, match="Cannot reach"):
        r.check()


def test_webui_without_api_flag():
    with FakeWebUI() as ui:
        ui.api = False
        with pytest.raises(RendererError, match="start the WebUI with --api"):
            WebUIApiRenderer(ui.url).check()


def test_http_error_shows_the_hosts_detail():
    with FakeWebUI() as ui:
        ui.fail[0] = (500, {"error": "OutOfMemoryError", "detail": "CUDA out of memory"})
        with pytest.raises(RendererError) as err:
            WebUIApiRenderer(ui.url).render(_req())
    assert "HTTP 500" in str(err.value) and "CUDA out of memory" in str(err.value)


def test_cli_job_over_the_api_then_http_error_is_resumable(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    out = tmp_path / "out"
    argv = [str(clip), "--api-url", "", "--prompt", "ink", "--width", "96", "--height", "64",
            "--max-frames", "6", "--keyframe-mode", "off", "--output-dir", str(out), "--seed", "3", "--quiet"]
    with FakeWebUI() as ui:
        argv[2] = ui.url
        ui.fail[3] = (500, {"detail": "boom"})
        assert main(argv) == 1
        err = capsys.readouterr().err
        assert "HTTP 500" in err and "boom" in err and "Traceback" not in err
        assert main(argv) == 0
        assert len(ui.payloads) == 7  # 3 ok, 1 failed, then the 3 missing frames
    jobs = list(out.iterdir())
    assert len(jobs) == 1 and list(jobs[0].glob("*.mp4"))


def test_sigma_override_maps_to_the_hosts_scheduler_and_options():
    with FakeWebUI() as ui:
        r = WebUIApiRenderer(ui.url)
        r.render(_req(extra={"sampler": "Euler", "sigma_override": {"schedule": "karras", "sigma_min": 0.03,
                                                                     "sigma_max": 1.0, "rho": 7.0}}))
        p = ui.payloads[0]
    assert p["scheduler"] == "Karras"
    assert p["override_settings"] == {"sigma_min": 0.03, "sigma_max": 1.0, "rho": 7.0}
    assert p["override_settings_restore_afterwards"] is True


def test_unmappable_schedule_is_logged_in_the_job(clip, tmp_path):
    from lib_vid2vid.params import Settings
    from lib_vid2vid.pipeline import run_job
    from lib_vid2vid.workspace import Job

    with FakeWebUI() as ui:
        s = Settings().replace(input=str(clip), output_dir=str(tmp_path), max_frames=2, width=96, height=64,
                               sigma_schedule="vp")
        res = run_job(s, WebUIApiRenderer(ui.url))
        assert "scheduler" not in ui.payloads[0]
    warnings = Job.open(res.job_dir).manifest["warnings"]
    assert any("cannot apply the vp sigma schedule" in w for w in warnings)
    assert "cannot apply the vp" in (res.job_dir / "job.log").read_text()


# ---- replies that are valid HTTP but wrong: one line each, never a traceback or a hang ----

def _one_line_error(call) -> str:
    with pytest.raises(RendererError) as err:
        call()
    msg = str(err.value)
    assert "\n" not in msg and "\r" not in msg, msg
    return msg


WRONG_REPLIES = {
    "json-list": (lambda: json_reply([1, 2, 3]), "with a list instead of a JSON object"),
    "json-null": (lambda: json_reply(None), "with null instead of a JSON object"),
    "json-number": (lambda: json_reply(7), "with the number 7 instead of a JSON object"),
    "image-number": (lambda: json_reply({"images": [123]}), "has the number 123 as image 1"),
    "image-null": (lambda: json_reply({"images": [None]}), "has null as image 1"),
    "image-empty": (lambda: json_reply({"images": [""]}), "has an empty text as image 1"),
    "images-object": (lambda: json_reply({"images": {"0": "x"}}), "has an object where its list of images"),
    "images-missing": (lambda: json_reply({"detail": "ok"}), "has null where its list of images"),
    "image-not-base64-png": (lambda: json_reply({"images": ["aGVsbG8="]}), "cannot be decoded"),
    "short-body": (lambda: raw_reply(b'{"images": []}', length=1000), "broke off (986 bytes missing)"),
    "redirect-loop": (lambda: redirect("/sdapi/v1/img2img"), "redirected /sdapi/v1/img2img to /sdapi/v1/img2img"),
    "html-200": (lambda: raw_reply(b"<!doctype html>\n<html><body>Login</body></html>", content_type="text/html"),
                 "with an HTML page"),
    "not-json": (lambda: raw_reply(b"ok\nfine", content_type="text/plain"), "with something that is not JSON"),
    "not-http": (lambda: garbage(), "failed during /sdapi/v1/img2img"),
    "error-text-with-newlines": (lambda: json_reply({"detail": "CUDA out of memory.\nTried to allocate 2 GiB\r\n"},
                                                    status=500),
                                 "HTTP 500 for /sdapi/v1/img2img: CUDA out of memory. Tried to allocate 2 GiB"),
    "error-plain-text-lines": (lambda: raw_reply(b"Internal\nServer\nError", status=500, content_type="text/plain"),
                               "HTTP 500 for /sdapi/v1/img2img: Internal Server Error"),
    "error-html-page": (lambda: raw_reply(b"<html>\n<h1>502 Bad Gateway</h1>\n</html>", status=502,
                                          content_type="text/html"), "HTTP 502 for /sdapi/v1/img2img: an HTML error"),
}


@pytest.mark.parametrize("name", list(WRONG_REPLIES))
def test_wrong_reply_to_a_frame_is_one_line(name):
    make, words = WRONG_REPLIES[name]
    with FakeWebUI() as ui:
        ui.reply[0] = make()
        msg = _one_line_error(lambda: WebUIApiRenderer(ui.url, timeout=20).render(_req()))
    assert words in msg, msg


OPTIONS_REPLIES = {
    "html-200": (lambda: raw_reply(b"<html><body>Stable Diffusion</body></html>", content_type="text/html"),
                 "answered /sdapi/v1/options with an HTML page"),
    "json-list": (lambda: json_reply([]), "with a list instead of a JSON object"),
    "redirect-loop": (lambda: redirect("/sdapi/v1/options", 301), "redirected /sdapi/v1/options"),
    "short-body": (lambda: raw_reply(b"{}", length=50), "broke off"),
}


@pytest.mark.parametrize("name", list(OPTIONS_REPLIES))
def test_wrong_reply_to_the_start_up_check_is_one_line(name):
    make, words = OPTIONS_REPLIES[name]
    with FakeWebUI() as ui:
        ui.options_reply = make()
        msg = _one_line_error(lambda: WebUIApiRenderer(ui.url, timeout=20).check())
    assert words in msg, msg


@pytest.mark.parametrize("headers_first", [True, False], ids=["body-trickles", "status-line-trickles"])
def test_timeout_is_a_deadline_for_the_whole_frame(headers_first):
    # one byte every 0.25 s never trips a per-read timeout; the deadline of 1.5 s for the frame must
    drip = Drip(interval=0.25, seconds=15.0, headers_first=headers_first)
    with FakeWebUI() as ui:
        ui.reply[0] = drip
        t0 = time.monotonic()
        msg = _one_line_error(lambda: WebUIApiRenderer(ui.url, timeout=1.5).render(_req()))
        waited = time.monotonic() - t0
    assert "did not answer /sdapi/v1/img2img within 1.5 s" in msg, msg
    assert waited < 10 and drip.sent < 40  # stopped long before the server would have


def test_announced_oversized_reply_is_refused_before_reading():
    flood = Flood(400 * MIB, announce=True, send=False)
    with FakeWebUI() as ui:
        ui.reply[0] = flood
        msg = _one_line_error(lambda: WebUIApiRenderer(ui.url, timeout=20).render(_req()))
    limit = reply_limit(96, 64, 1)
    assert limit < 5 * MIB
    assert "announces 400.0 MB" in msg and f"{limit / MIB:.1f} MB" in msg, msg


def test_oversized_reply_is_cut_off_while_streaming():
    # no Content-Length: the client must count what it reads and stop at the cap
    flood = Flood(64 * MIB, announce=False)
    with FakeWebUI() as ui:
        ui.reply[0] = flood
        msg = _one_line_error(lambda: WebUIApiRenderer(ui.url, timeout=20).render(_req(batch_size=2)))
    limit = reply_limit(96, 64, 2)
    assert f"sent more than the {limit / MIB:.1f} MB" in msg and "stopped reading" in msg, msg
    assert flood.sent < 40 * MIB  # the client hung up; it did not read the 64 MB


def test_reply_limit_scales_with_the_frame_and_batch():
    assert reply_limit(512, 512, 1) == REPLY_BASE_BYTES + 5 * 512 * 512 * 8
    assert reply_limit(1024, 1024, 4) > 4 * reply_limit(512, 512, 1) - 4 * REPLY_BASE_BYTES


def test_image_far_larger_than_the_frame_is_refused_before_decoding():
    big = np.zeros((64 * 5, 96 * 5, 3), np.uint8)  # 25x the pixels asked for
    with FakeWebUI() as ui:
        ui.reply[0] = json_reply({"images": [encode_image(big)]})
        msg = _one_line_error(lambda: WebUIApiRenderer(ui.url).render(_req()))
    assert "480x320 image, far larger" in msg


@pytest.mark.parametrize("url,words", [
    ("127.0.0.1:7860", "has no scheme: write it as http://127.0.0.1:7860"),
    ("localhost:7860", "has no scheme: write it as http://localhost:7860"),
    ("ftp://127.0.0.1:7860", "must start with http:// or https://"),
    ("http://127.0.0.1:port", "is not valid"),
    ("http://", "has no host"),
])
def test_address_without_http_scheme_is_named(url, words):
    assert words in _one_line_error(lambda: WebUIApiRenderer(url))


def test_cli_names_the_missing_scheme(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    assert main([str(clip), "--api-url", "127.0.0.1:7860", "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["error: WebUI address '127.0.0.1:7860' has no scheme: write it as "
                                        "http://127.0.0.1:7860"]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "x"])
def test_timeout_must_be_finite_and_positive(timeout):
    assert "give a number of seconds above 0" in _one_line_error(lambda: WebUIApiRenderer(timeout=timeout))


def test_credentials_in_the_address_become_basic_auth_and_are_not_shown():
    with FakeWebUI() as ui:
        url = ui.url.replace("http://", "http://me:s%40cret@")
        r = WebUIApiRenderer(url)
        r.check()
        auth = ui.headers[0].get("Authorization")
    assert auth == "Basic " + base64.b64encode(b"me:s@cret").decode()
    assert "s%40cret" not in r.url and "me:" not in r.url and r.url == ui.url


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_submit_upload_of_a_fifo_is_refused_not_read(tmp_path):
    from lib_vid2vid.errors import VideoError
    from lib_vid2vid.params import Settings

    fifo = tmp_path / "in.mp4"
    os.mkfifo(fifo)
    box = {}

    def target():
        try:
            WebUIApiRenderer("http://127.0.0.1:9").submit_job(Settings().replace(input=str(fifo)), upload=True)
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            box["error"] = exc

    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(20)
    if th.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        th.join(10)
        pytest.fail("submit_job blocked reading a FIFO")
    assert isinstance(box.get("error"), VideoError) and "named pipe" in str(box["error"])


def test_submit_of_a_text_file_is_refused_before_any_request(tmp_path):
    """The API client probes first: a README is not uploaded to the server as a "video" (nothing listens on
    port 9, so any request would fail with a RendererError instead)."""
    from lib_vid2vid.errors import VideoError
    from lib_vid2vid.params import Settings

    readme = tmp_path / "README.txt"
    readme.write_text("# vid2vid\n\nA text file, not a video.\n" * 40, encoding="utf-8")
    with pytest.raises(VideoError) as e:
        WebUIApiRenderer("http://127.0.0.1:9").submit_job(Settings().replace(input=str(readme)), upload=True)
    assert "README.txt is not a video (FFmpeg reads it as a text file" in str(e.value)


def test_cli_resumes_a_job_only_on_the_same_checkpoint(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main
    from lib_vid2vid.workspace import Job

    out = tmp_path / "out"
    with FakeWebUI() as ui:
        argv = [str(clip), "--api-url", ui.url, "--prompt", "ink", "--width", "96", "--height", "64",
                "--max-frames", "6", "--keyframe-mode", "off", "--output-dir", str(out), "--seed", "3", "--quiet"]
        sd15 = {"sd_model_checkpoint": "v1-5-pruned-emaonly.safetensors [6ce0161689]",
                "sd_checkpoint_hash": "6ce0161689b3853acaa03779ec93eafe75a02f4ced659bee03f50797806fa2fa",
                "sd_vae": "Automatic", "CLIP_stop_at_last_layers": 1, "live_previews_enable": True}
        ui.options = dict(sd15)
        ui.fail[3] = (500, {"detail": "boom"})
        assert main(argv) == 1
        (first,) = out.iterdir()
        capsys.readouterr()
        ui.options = {**sd15, "sd_model_checkpoint": "dreamshaper_8.safetensors [879db523c3]",
                      "sd_checkpoint_hash": "879db523c30d3b9017143d56705015e15a2cb5628762c11d086fed9538abd7fd"}
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert (f"not resuming {first.name}: checkpoint differs (was v1-5-pruned-emaonly.safetensors [6ce0161689], "
                f"now dreamshaper_8.safetensors [879db523c3])\n") in err
        assert len(ui.payloads) == 4 + 6
        ui.options = {**sd15, "live_previews_enable": False}  # an option that changes no pixel
        assert main(argv) == 0
        assert len(ui.payloads) == 10 + 3 and "not resuming" not in capsys.readouterr().err
    host = Job.open(first).manifest["host"]
    assert host["checkpoint"] == {"name": sd15["sd_model_checkpoint"], "hash": "6ce0161689"}
    assert host["options"] == {"CLIP_stop_at_last_layers": 1} and Job.open(first).status == "done"
