"""The HTTP renderer against a local stand-in of the WebUI API."""

import socket

import numpy as np
import pytest

from lib_vid2vid.errors import RendererError
from lib_vid2vid.host.webui_api import WebUIApiRenderer, decode_image, encode_image
from lib_vid2vid.renderer import RenderRequest
from tests.fake_webui import FakeWebUI


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
            "--max-frames", "6", "--output-dir", str(out), "--seed", "3", "--quiet"]
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


def test_cli_resumes_a_job_only_on_the_same_checkpoint(clip, tmp_path, capsys):
    from lib_vid2vid.__main__ import main
    from lib_vid2vid.workspace import Job

    out = tmp_path / "out"
    with FakeWebUI() as ui:
        argv = [str(clip), "--api-url", ui.url, "--prompt", "ink", "--width", "96", "--height", "64",
                "--max-frames", "6", "--output-dir", str(out), "--seed", "3", "--quiet"]
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
