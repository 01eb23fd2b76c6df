"""The diffusers renderer with tiny random-weight models built here (CPU, offline): whole jobs, masks, batches,
the sigma override, LoRA, single files, and the errors for missing or wrong models."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.diffusers_skip import require_diffusers

require_diffusers()

from lib_vid2vid import sigmas, video  # noqa: E402
from lib_vid2vid.errors import RendererError  # noqa: E402
from lib_vid2vid.host.diffusers import DiffusersRenderer, checkpoint_kind, inspect_model, parse_lora  # noqa: E402
from lib_vid2vid.params import Settings  # noqa: E402
from lib_vid2vid.pipeline import run_job  # noqa: E402
from lib_vid2vid.renderer import RenderRequest  # noqa: E402
from lib_vid2vid.workspace import Job  # noqa: E402
from tests import tiny_diffusers as tiny  # noqa: E402
from tests.doubles import StopAfter  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


class _Models:
    """``models["sd"]``: the session's tiny model of that kind, built on first use (conftest.tiny_models)."""

    def __init__(self, get):
        self.get = get

    def __getitem__(self, kind):
        return self.get(kind)


@pytest.fixture(scope="session")
def models(tiny_models):
    return _Models(tiny_models)


@pytest.fixture(scope="session")
def sd(models):
    return DiffusersRenderer(models["sd"])


def _settings(clip, out, **kw):
    base = dict(input=str(clip), output_dir=str(out), width=96, height=64, fps=12, max_frames=6, seed=7,
                denoise=0.5, steps=4, prompt="a watercolour cat", report=False, comparison_video=False,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _frames(job_dir, stage="pass1"):
    return {p.name: p.read_bytes() for p in sorted((Path(job_dir) / "frames" / stage).glob("*.png"))}


def _pixels(job_dir, stage="pass1"):
    from PIL import Image

    return {p.name: np.asarray(Image.open(p).convert("RGB"))
            for p in sorted((Path(job_dir) / "frames" / stage).glob("*.png"))}


def _request(**kw):
    init = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    base = dict(init=init, seed=5, denoise=0.5, steps=6, cfg=7.0, prompt="a cat", extra={"sampler": "Euler"})
    base.update(kw)
    return RenderRequest(**base)


# ------------------------------------------------------------------ whole jobs


def test_img2img_job_frames_sizes_and_video(clip, tmp_path, sd):
    res = run_job(_settings(clip, tmp_path / "out"), sd)
    assert res.status == "done" and res.frames_done == 6
    px = _pixels(res.job_dir)
    assert len(px) == 6 and all(a.shape == (64, 96, 3) for a in px.values())
    info = video.probe(res.video_path)
    assert (info.width, info.height, info.frame_count) == (96, 64, 6)
    src = video.probe(str(clip))
    assert src.frame_count == 24
    host = Job.open(res.job_dir).manifest["host"]
    assert host["renderer"] == "diffusers" and host["request"]["dtype"] == "float32"


def test_same_seed_same_frames_and_resume_is_byte_exact(clip, tmp_path, models, sd):
    s = _settings(clip, tmp_path / "a", init_mode="flow_warp", colour_coherence=True)
    full = run_job(s, sd)
    again = run_job(_settings(clip, tmp_path / "b", init_mode="flow_warp", colour_coherence=True),
                    DiffusersRenderer(models["sd"]))  # a fresh load renders the same bytes
    assert _frames(full.job_dir) == _frames(again.job_dir)
    stop = StopAfter(2)
    s_c = _settings(clip, tmp_path / "c", init_mode="flow_warp", colour_coherence=True)
    part = run_job(s_c, sd, should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted" and 2 <= len(_frames(part.job_dir)) < 6
    resumed = run_job(s_c, sd)
    assert resumed.job_dir == part.job_dir and resumed.frames_done == 6
    assert _frames(resumed.job_dir) == _frames(full.job_dir)
    other = run_job(_settings(clip, tmp_path / "d", seed=8), sd)
    assert _frames(other.job_dir) != _frames(run_job(_settings(clip, tmp_path / "e"), sd).job_dir)


def test_inpaint_job_through_the_pipeline(clip, tmp_path, sd):
    s = _settings(clip, tmp_path / "out", motion_mask=True, mask_usage="inpaint")
    res = run_job(s, sd)
    assert res.status == "done" and res.frames_done == 6
    assert len(_frames(res.job_dir)) == 6 and len(_frames(res.job_dir, "masks")) == 6


def test_every_strategy_runs_unchanged(clip, tmp_path, sd):
    from lib_vid2vid.params import STRATEGIES

    for name, values in STRATEGIES.items():
        res = run_job(_settings(clip, tmp_path / name, max_frames=3, **values), sd)
        assert res.status == "done" and res.frames_done == 3, name


def test_post_stages_and_debug_frame_run_unchanged(clip, tmp_path, sd):
    from lib_vid2vid.debug import render_single_frame

    s = _settings(clip, tmp_path / "out", max_frames=3, upscaler="Lanczos", upscale_factor=2.0,
                  interpolation_ratio="2", interpolator="linear", deflicker=0.5)
    res = run_job(s, sd)
    assert res.status == "done"
    info = video.probe(res.video_path)
    assert (info.width, info.height, info.frame_count) == (192, 128, 6)  # upscaled x2, rate x2
    one = render_single_frame(_settings(clip, tmp_path / "dbg"), sd, frame=1, out_dir=tmp_path / "dbg")
    assert one.frame == 1 and all(Path(p).is_file() for p in one.paths.values())


def test_sdxl_job(clip, tmp_path, models):
    res = run_job(_settings(clip, tmp_path / "out", max_frames=3), DiffusersRenderer(models["sdxl"]))
    assert res.frames_done == 3 and all(a.shape == (64, 96, 3) for a in _pixels(res.job_dir).values())


# ------------------------------------------------------------------ one request


def test_mask_keeps_unmasked_pixels_and_batch_seeds(sd):
    mask = np.zeros((64, 96), np.float32)
    mask[:, :48] = 1.0
    req = _request(mask=mask, batch_size=2, n_iter=2)
    out = sd.render(req)
    assert len(out) == 4 and all(o.shape == (64, 96, 3) and o.dtype == np.uint8 for o in out)
    for o in out:
        assert np.array_equal(o[:, 48:], req.init[:, 48:])  # outside the mask: the init, exactly
        assert (o[:, :48] != req.init[:, :48]).mean() > 0.5
    # image k of batch j has seed + j * batch_size + k: the second batch is seed 7's first batch (compared at the
    # same batch size: torch on the CPU may sum a batch of one in another order, +-1 level on a pixel or two)
    single = sd.render(_request(mask=mask, seed=7, batch_size=2))
    assert np.array_equal(single[0], out[2]) and np.array_equal(single[1], out[3])
    assert not np.array_equal(out[0], out[1])


def test_inpainting_unet_renders_with_and_without_mask(models):
    r = DiffusersRenderer(models["sd_inpaint"])
    assert r.source.inpainting
    assert r.render(_request())[0].shape == (64, 96, 3)
    mask = np.zeros((64, 96), np.float32)
    mask[20:40, 30:60] = 1
    out = r.render(_request(mask=mask))[0]
    assert np.array_equal(out[mask == 0], _request().init[mask == 0])


def test_sigma_override_reaches_the_scheduler(sd):
    cfg = sigmas.SigmaSettings("karras", sigma_min=0.0292, sigma_max=1.0)
    req = _request(sigmas=sigmas.override_function(cfg), steps=10, denoise=0.6)
    sd.render(req)
    tail = sigmas.img2img_tail(sigmas.override_function(cfg), 10, 0.6)
    assert len(tail) == int(0.6 * 10) + 2  # the WebUI's tail: int(steps * denoise) + 1 steps
    scheduler = sd.scheduler_for("Euler")
    assert np.allclose(scheduler.sigmas[1:].numpy(), tail, rtol=1e-6)  # what the sampler stepped through
    assert scheduler.step_index == len(tail) - 1 + 1  # it ran every step of the tail
    assert sd.last_sigmas == tail
    # another schedule gives other pixels; a sampler without custom sigmas says so once
    other = sigmas.override_function(sigmas.SigmaSettings("exponential", sigma_min=0.0292, sigma_max=3.0))
    assert not np.array_equal(sd.render(req)[0], sd.render(_request(sigmas=other, steps=10, denoise=0.6))[0])
    sd.render(_request(sigmas=other, extra={"sampler": "Euler a"}))
    sd.render(_request(sigmas=other, extra={"sampler": "Euler a"}))
    notes = [n for n in sd.take_notices() if "Euler a" in n]
    assert len(notes) == 1 and "Euler or UniPC" in notes[0]  # said once, and again to the next job that asks
    assert sd.override_warning("UniPC") is None and sd.override_warning("DDIM")


@pytest.mark.parametrize("steps,denoise", [(10, 0.5), (20, 0.45), (4, 0.5), (6, 0.0), (8, 0.999), (8, 1.0),
                                           (7, 0.3)])
def test_img2img_runs_the_webuis_steps_without_an_override(sd, monkeypatch, steps, denoise):
    """Without a sigma override the scheduler's own schedule of ``steps`` runs as the WebUI's img2img does:
    ``t_enc = int(min(denoise, 0.999) * steps)``, the last ``t_enc + 1`` steps (from index steps - t_enc - 1)."""
    scheduler = sd.scheduler_for("Euler")
    seen = []
    original = type(scheduler).step

    def spy(self, model_output, timestep, *args, **kwargs):
        seen.append(float(timestep))
        return original(self, model_output, timestep, *args, **kwargs)

    monkeypatch.setattr(type(scheduler), "step", spy)
    sd.render(_request(steps=steps, denoise=denoise))
    t_enc = int(min(denoise, 0.999) * steps)
    full = [float(t) for t in scheduler.timesteps]  # the schedule of `steps` the call set
    assert len(full) == steps
    assert seen == full[steps - t_enc - 1:] and len(seen) == t_enc + 1


def test_sigma_override_in_a_job(clip, tmp_path, sd):
    s = _settings(clip, tmp_path / "out", max_frames=2, sigma_schedule="karras", sigma_max=1.0, steps=8)
    res = run_job(s, sd)
    m = Job.open(res.job_dir).manifest
    assert np.allclose(m["sigmas"]["img2img_tail"], sd.last_sigmas)
    assert np.allclose(sd.scheduler_for("Euler").sigmas[1:].numpy(), m["sigmas"]["img2img_tail"], rtol=1e-6)


def test_lora_by_path_changes_pixels_by_its_weight(tmp_path, models):
    pytest.importorskip("peft", reason="the diffusers extra is not installed (pip install .[diffusers])")
    import torch
    from diffusers import StableDiffusionPipeline, UNet2DConditionModel
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    unet = UNet2DConditionModel.from_pretrained(models["sd"] / "unet")
    torch.manual_seed(3)
    unet.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False,
                                target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    StableDiffusionPipeline.save_lora_weights(tmp_path, unet_lora_layers=get_peft_model_state_dict(unet),
                                              weight_name="tiny-lora.safetensors")
    lora = tmp_path / "tiny-lora.safetensors"
    base = DiffusersRenderer(models["sd"]).render(_request())[0]
    on = DiffusersRenderer(models["sd"], loras=[(str(lora), 1.0)]).render(_request())[0]
    off = DiffusersRenderer(models["sd"], loras=[parse_lora(f"{lora}:0")]).render(_request())[0]
    assert not np.array_equal(on, base)
    assert np.array_equal(off, base)
    with pytest.raises(RendererError, match="LoRA file .* not found"):
        DiffusersRenderer(models["sd"], loras=[(str(tmp_path / "none.safetensors"), 1.0)])
    with pytest.raises(RendererError, match="is a LoRA.*--lora"):
        inspect_model(lora)


def test_parse_lora():
    assert parse_lora("a/b.safetensors") == ("a/b.safetensors", 1.0)
    assert parse_lora("a/b.safetensors:0.6") == ("a/b.safetensors", 0.6)
    assert parse_lora(r"C:\loras\b.safetensors") == (r"C:\loras\b.safetensors", 1.0)
    assert parse_lora(r"C:\loras\b.safetensors:0.5") == (r"C:\loras\b.safetensors", 0.5)


# ------------------------------------------------------------------ errors


def test_missing_and_incomplete_models_are_one_line(tmp_path, models):
    with pytest.raises(RendererError, match="not found"):
        inspect_model(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RendererError, match="has no model_index.json"):
        inspect_model(tmp_path / "empty")
    broken = tmp_path / "broken"
    shutil.copytree(models["sd"], broken)
    for f in (broken / "unet").glob("*.safetensors"):
        f.unlink()
    for f in (broken / "tokenizer").glob("*.json"):
        if f.name != "tokenizer_config.json":
            f.unlink()
    with pytest.raises(RendererError) as err:
        DiffusersRenderer(broken)
    text = str(err.value)
    assert "incomplete" in text and "unet/ weights" in text and "tokenizer/tokenizer.json" in text and "\n" not in text
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"not a pickle")
    with pytest.raises(RendererError, match="only .safetensors"):
        inspect_model(ckpt)


def test_wrong_kind_of_model(models):
    with pytest.raises(RendererError, match="is a Stable Video Diffusion model, not Stable Diffusion 1.x/2.x or "
                                           "SDXL.*lib_vid2vid.img2vid"):
        DiffusersRenderer(models["svd"])
    with pytest.raises(RendererError, match="is a Stable Diffusion 1.x/2.x model, not Stable Video Diffusion"):
        inspect_model(models["sd"], want=("svd",))


def test_checkpoint_kind_from_tensor_names():
    unet = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3)}
    assert checkpoint_kind({**unet, "cond_stage_model.transformer.x": (1,)})[:2] == ("sd", "Stable Diffusion")
    assert checkpoint_kind({"model.diffusion_model.input_blocks.0.0.weight": (320, 9, 3, 3),
                            "cond_stage_model.model.ln_final.weight": (1,)}) == ("sd", "Stable Diffusion", True)
    assert checkpoint_kind({**unet, "conditioner.embedders.1.model.ln_final.weight": (1,)})[0] == "sdxl"
    assert checkpoint_kind({**unet, "model.diffusion_model.input_blocks.1.0.time_stack.x": (1,)})[0] == "svd"
    assert checkpoint_kind({"lora_unet_down_blocks_0.alpha": ()})[:2] == (None, "LoRA")
    assert checkpoint_kind({"encoder.down.0.block.0.conv1.weight": (1,)})[:2] == (None, "VAE")


def test_single_file_needs_its_configuration_offline(tmp_path):
    import torch
    from safetensors.torch import save_file

    ckpt = tmp_path / "sd15.safetensors"
    save_file({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(320, 4, 3, 3),
               "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(768)}, str(ckpt))
    env_cache = os.environ.get("HF_HOME")
    os.environ["HF_HOME"] = str(tmp_path / "empty-cache")  # an empty Hugging Face cache: nothing to find there
    try:
        with pytest.raises(RendererError, match="needs its model's configuration files.*--model-config FOLDER"):
            inspect_model(ckpt)
    finally:
        if env_cache is None:
            os.environ.pop("HF_HOME", None)
        else:
            os.environ["HF_HOME"] = env_cache


def test_cli_runs_the_diffusers_renderer(clip, tmp_path, models):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "lib_vid2vid", str(clip), "--renderer", "diffusers", "--model", str(models["sd"]),
           "--prompt", "ink", "--width", "96", "--height", "64", "--max-frames", "3", "--steps", "3",
           "--output-dir", str(tmp_path / "out"), "--quiet", "--no-report"]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "done: 3 frames" in r.stdout
    r = subprocess.run(cmd[:6] + ["--output-dir", str(tmp_path / "x")], capture_output=True, text=True, env=env,
                       timeout=300)
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --renderer diffusers needs --model PATH (a diffusers folder or a .safetensors checkpoint) "
        "(--help lists the options)"]
    bad = [sys.executable, "-m", "lib_vid2vid", str(clip), "--renderer", "diffusers", "--model",
           str(models["svd"]), "--output-dir", str(tmp_path / "y")]
    r = subprocess.run(bad, capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert json.dumps("Stable Video Diffusion")[1:-1] in r.stderr


def test_single_file_checkpoint_renders_like_its_folder(tmp_path, models, sd):
    ckpt = tiny.save_single_file(models["sd"], tmp_path / "tiny-sd.safetensors")
    config = tmp_path / "config-only"
    shutil.copytree(models["sd"], config, ignore=shutil.ignore_patterns("*.safetensors"))  # no weights needed
    single = DiffusersRenderer(ckpt, config=config)
    assert single.source.single_file and single.source.kind == "sd"
    req = _request()
    assert np.array_equal(single.render(req)[0], sd.render(req)[0])
    assert single.host_identity()["checkpoint"]["name"] == "tiny-sd.safetensors"
    with pytest.raises(RendererError, match="is for SDXL, but tiny-sd.safetensors is Stable Diffusion"):
        inspect_model(ckpt, models["sdxl"])


def test_sdxl_temporal_preset(clip, tmp_path, models, capsys):
    from lib_vid2vid.__main__ import main

    out = tmp_path / "out"
    code = main([str(clip), "--preset", "sdxl_temporal", "--model", str(models["sdxl"]), "--prompt", "ink",
                 "--max-frames", "2", "--steps", "2", "--colour-key-target", "#ffffff", "--init-strength", "0.3",
                 "--output-format", "png", "--png-digits", "16", "--output-dir", str(out), "--quiet", "--no-report",
                 "--no-comparison-video"])
    assert code == 0, capsys.readouterr().err
    job_dir = next(out.iterdir())
    s = Job.open(job_dir).manifest["settings"]
    assert (s["init_mode"], s["init_strength"], s["colour_key"], s["colour_key_fill"]) == ("temporal_merge", 0.3,
                                                                                         True, "noise")
    assert Job.open(job_dir).manifest["host"]["renderer"] == "diffusers"
    pngs = sorted(p.name for p in (job_dir / "clip-vid2vid").glob("*.png"))
    assert pngs == ["0000000000000001.png", "0000000000000002.png"]
    from PIL import Image

    assert Image.open(job_dir / "clip-vid2vid" / pngs[0]).size == (1024, 680)  # long side 1024, aspect kept


def _latent_noise(seed, batch=1, h=64, w=96):
    return np.random.default_rng(seed).standard_normal((batch, 4, h // 8, w // 8)).astype(np.float32)


def _spy_on_added_noise(sd, monkeypatch):
    """(the Euler scheduler, a list that gets a copy of each noise its class adds to an init latent)."""
    scheduler = sd.scheduler_for("Euler")
    seen = []
    original = type(scheduler).add_noise

    def spy(self, samples, noise, timesteps):
        seen.append(noise.detach().cpu().numpy().copy())
        return original(self, samples, noise, timesteps)

    monkeypatch.setattr(type(scheduler), "add_noise", spy)
    return scheduler, seen


def test_warped_noise_replaces_the_seed_noise(sd, monkeypatch):
    """noise_mode warped: the noise added to the init latent is the request's (mixed with the seed's own by the
    strength): strength 1 gives exactly the field, 0 the seed's noise bit for bit. (The seed still draws the
    VAE's latent sample, so only the noise is compared, and pixels for one seed.)"""
    field = _latent_noise(1)
    scheduler, seen = _spy_on_added_noise(sd, monkeypatch)
    a = sd.render(_request(seed=5, noise=field))[0]
    assert np.array_equal(seen[-1], field)
    own = sd.render(_request(seed=5))[0]
    seed_noise = seen[-1]
    assert not np.array_equal(seed_noise, field) and not np.array_equal(a, own)
    assert np.array_equal(sd.render(_request(seed=5, noise=field))[0], a)  # deterministic
    assert not np.array_equal(sd.render(_request(seed=5, noise=_latent_noise(2)))[0], a)
    assert np.array_equal(sd.render(_request(seed=5, noise=field, noise_strength=0.0))[0], own)
    assert np.array_equal(seen[-1], seed_noise)
    sd.render(_request(seed=5, noise=field, noise_strength=0.25))
    want = (np.float32(0.5) * field + np.float32(np.sqrt(0.75)) * seed_noise).astype(np.float32)
    assert np.allclose(seen[-1], want, atol=1e-6)
    assert "add_noise" not in vars(scheduler)  # the scheduler is itself again after the call


def test_warped_noise_per_image_of_a_batch_and_shape_check(sd, monkeypatch):
    field = _latent_noise(3, batch=4)
    scheduler, seen = _spy_on_added_noise(sd, monkeypatch)
    out = sd.render(_request(batch_size=2, n_iter=2, noise=field))
    # image k of batch j samples with field[j * 2 + k]
    assert len(out) == 4 and len(seen) == 2
    assert np.array_equal(seen[0], field[0:2]) and np.array_equal(seen[1], field[2:4])
    with pytest.raises(RendererError, match="noise_mode seed"):
        sd.render(_request(noise=_latent_noise(4, h=32, w=32)))
