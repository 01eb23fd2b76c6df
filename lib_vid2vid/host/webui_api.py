"""A Renderer that drives a running WebUI (A1111 or Forge) over its HTTP API, one frame per request.

Start the WebUI with ``--api``. Each frame is one ``POST /sdapi/v1/img2img``. A sigma override cannot be
sent as a list over the API; a karras / exponential / polyexponential override is mapped to the host's
scheduler of that name plus its ``sigma_min``/``sigma_max``/``rho`` options (``override_settings``), which
gives the same schedule; other schedules fall back to the host's with a warning.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import numpy as np
from PIL import Image

from ..errors import RendererError
from ..renderer import RenderRequest

DEFAULT_URL = "http://127.0.0.1:7860"


def encode_image(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode_mask(mask: np.ndarray) -> str:
    grey = np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_image(data: str) -> np.ndarray:
    if "," in data[:100] and data.startswith("data:"):
        data = data.split(",", 1)[1]
    try:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        return np.asarray(img.convert("RGB"))
    except Exception as exc:  # noqa: BLE001
        raise RendererError(f"The WebUI returned an image that cannot be decoded ({exc})") from None


def _detail(resp) -> str:
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or "").strip().splitlines()[0][:300] if resp.text else ""
    if isinstance(body, dict):
        for key in ("detail", "error", "errors", "message"):
            if body.get(key):
                val = body[key]
                return (val if isinstance(val, str) else json.dumps(val))[:300]
    return str(body)[:300]


SCHEDULER_FOR = {"karras": "Karras", "exponential": "Exponential", "polyexponential": "Polyexponential"}
"""Sigma schedules the API can reproduce: the host's scheduler of that name with our sigma_min/max/rho."""


class WebUIApiRenderer:
    """``render`` posts one img2img request per frame to ``url``."""

    sigma_schedules = tuple(SCHEDULER_FOR)

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 600.0, session=None,
                 override_settings: dict[str, Any] | None = None):
        import requests

        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = session or requests.Session()
        self.override_settings = dict(override_settings or {})

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        import requests

        try:
            resp = self.session.post(self.url + path, json=payload, timeout=self.timeout)
        except requests.ConnectionError:
            raise RendererError(f"Cannot reach the WebUI at {self.url}: start it with --api (or give --api-url), "
                                f"then run the same command again to resume") from None
        except requests.Timeout:
            raise RendererError(f"The WebUI at {self.url} did not answer within {self.timeout:g} s: check it is "
                                f"not stuck, then run again to resume") from None
        if resp.status_code == 404:
            raise RendererError(f"{self.url}{path} not found: start the WebUI with --api")
        if resp.status_code >= 400:
            raise RendererError(f"The WebUI answered HTTP {resp.status_code} for {path}: {_detail(resp)}")
        try:
            return resp.json()
        except ValueError:
            raise RendererError(f"The WebUI answered {path} with something that is not JSON") from None

    def check(self) -> dict[str, Any]:
        """Fail fast (before a job starts) if the WebUI is not reachable; returns its options."""
        import requests

        try:
            resp = self.session.get(self.url + "/sdapi/v1/options", timeout=min(self.timeout, 30))
        except requests.RequestException:
            raise RendererError(f"Cannot reach the WebUI at {self.url}: start it with --api (or give --api-url)") \
                from None
        if resp.status_code == 404:
            raise RendererError(f"{self.url} has no API: start the WebUI with --api")
        if resp.status_code >= 400:
            raise RendererError(f"The WebUI answered HTTP {resp.status_code}: {_detail(resp)}")
        return resp.json()

    def host_identity(self) -> dict[str, Any]:
        """Part of the job's identity (lib_vid2vid/identity.py): the WebUI's checkpoint, VAE and
        pixel-changing options from ``/sdapi/v1/options``, and the overrides this client sends."""
        from .. import identity

        opts = self.check()
        opts = opts if isinstance(opts, dict) else {}
        digest = opts.get("sd_checkpoint_hash")
        return {"renderer": "webui-api",
                "checkpoint": {"name": opts.get("sd_model_checkpoint"), "hash": str(digest)[:10] if digest else None},
                "vae": {"name": opts.get("sd_vae"), "hash": None},
                "options": {k: opts[k] for k in identity.PIXEL_OPTIONS if k in opts},
                "request": {"override_settings": self.override_settings}}

    def payload(self, req: RenderRequest) -> dict[str, Any]:
        p: dict[str, Any] = {
            "init_images": [encode_image(req.init)],
            "prompt": req.prompt,
            "negative_prompt": req.negative_prompt,
            "seed": int(req.seed),
            "subseed": int(req.subseed),
            "subseed_strength": float(req.subseed_strength),
            "denoising_strength": float(req.denoise),
            "steps": int(req.steps),
            "cfg_scale": float(req.cfg),
            "width": req.width,
            "height": req.height,
            "batch_size": int(req.batch_size),
            "n_iter": int(req.n_iter),
            "resize_mode": 0,
            "send_images": True,
            "save_images": False,
            "do_not_save_samples": True,
            "do_not_save_grid": True,
        }
        sampler = req.extra.get("sampler")
        if sampler:
            p["sampler_name"] = sampler
        scheduler = req.extra.get("scheduler")
        if scheduler and scheduler != "Automatic":
            p["scheduler"] = scheduler
        overrides = dict(self.override_settings)
        overrides.update(req.extra.get("override_settings", {}))
        sig = req.extra.get("sigma_override")
        if sig and sig["schedule"] in SCHEDULER_FOR:
            p["scheduler"] = SCHEDULER_FOR[sig["schedule"]]
            overrides.update(sigma_min=sig["sigma_min"], sigma_max=sig["sigma_max"])
            if sig["schedule"] != "exponential":
                overrides["rho"] = sig["rho"]
        if overrides:
            p["override_settings"] = overrides
            p["override_settings_restore_afterwards"] = True
        if req.mask is not None:
            p.update(mask=encode_mask(req.mask), mask_blur=0, inpainting_fill=1, inpaint_full_res=False,
                     inpainting_mask_invert=0)
        return p

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        body = self._post("/sdapi/v1/img2img", self.payload(request))
        images = body.get("images") or []
        want = request.batch_size * request.n_iter
        if len(images) < want:
            raise RendererError(f"The WebUI returned {len(images)} images for frame {request.frame_index}, "
                                f"expected {want}")
        return [decode_image(b) for b in images[:want]]

    def submit_job(self, settings, *, upload: bool = False) -> dict[str, Any]:
        """Run a whole job on the server through its vid2vid Script (``script_name: "vid2vid"``).

        The video goes as a server path, or as base64 data with ``upload``. Sampling settings travel as the
        img2img request's own fields; the rest as the Script's args (every value, in UI order). Returns the
        Script's ``vid2vid_*`` result fields (status, job_dir, video, info).
        """
        from pathlib import Path

        from .. import params

        s = settings
        video_arg = s.video.input
        if upload:
            video_arg = base64.b64encode(Path(s.video.input).read_bytes()).decode("ascii")
        else:
            video_arg = str(Path(video_arg).resolve())
        args = params.api_args(s.replace(input=str(Path(s.video.input).resolve())))
        args[params.api_arg_names().index("input")] = video_arg
        from .. import video
        from ..pipeline import output_size

        info = video.probe(s.video.input)
        width, height = output_size(info.width, info.height, s.video.width, s.video.height)
        sm = s.sampling
        body: dict[str, Any] = {
            "init_images": [], "prompt": sm.prompt, "negative_prompt": sm.negative_prompt, "steps": sm.steps,
            "cfg_scale": sm.cfg_scale, "denoising_strength": sm.denoise, "seed": sm.seed,
            "sampler_name": sm.sampler, "batch_size": sm.batch_size, "n_iter": sm.batch_count,
            "width": width, "height": height,
            "script_name": "vid2vid", "script_args": args, "send_images": False, "save_images": False,
        }
        if sm.scheduler and sm.scheduler != "Automatic":
            body["scheduler"] = sm.scheduler
        reply = self._post("/sdapi/v1/img2img", body)
        try:
            extra = json.loads(reply.get("info") or "{}").get("extra_generation_params") or {}
        except ValueError:
            extra = {}
        if "vid2vid_status" not in extra:
            raise RendererError(f"The WebUI at {self.url} did not run vid2vid: is the extension installed there?")
        result = {k[len("vid2vid_"):]: v for k, v in extra.items() if k.startswith("vid2vid_")}
        if result.get("status") == "error":
            raise RendererError(f"vid2vid on the WebUI: {result.get('error')}")
        return result
