"""A Renderer that drives a running WebUI (A1111 or Forge) over its HTTP API, one frame per request.

Start the WebUI with ``--api``. Each frame is one ``POST /sdapi/v1/img2img``. A sigma override cannot be
sent as a list over the API; a karras / exponential / polyexponential override is mapped to the host's
scheduler of that name plus its ``sigma_min``/``sigma_max``/``rho`` options (``override_settings``), which
gives the same schedule; other schedules fall back to the host's with a warning.

Transport: ``http.client`` from the standard library, one connection per request, so that this module owns
the socket. ``timeout`` is a deadline for the whole request (connect, send, reply headers and body): a
watchdog thread shuts the socket down when it passes, so a server that trickles bytes cannot hold a frame
longer. A reply is read in chunks and refused once it exceeds :func:`reply_limit` bytes; it must be a JSON
object. Redirects are not followed: the error names the address to use instead. Every failure is a
one-line :class:`~lib_vid2vid.errors.RendererError`.
"""

from __future__ import annotations

import base64
import http.client
import io
import json
import socket
import threading
import time
import urllib.parse
from typing import Any

import numpy as np
from PIL import Image

from ..errors import RendererError, SettingsError
from ..renderer import RenderRequest

DEFAULT_URL = "http://127.0.0.1:7860"

MIB = 1 << 20
REPLY_BASE_BYTES = 4 * MIB
"""What every reply may hold besides its images (the info text, the echoed parameters)."""
EXTRA_IMAGES = 4
"""Images a reply may carry beyond the batch (ControlNet's detected maps and the like)."""
REPLY_BYTES_PER_PIXEL = 8
"""Bound on a base64 PNG's bytes per pixel: RGBA is 4, PNG adds well under 1 % to incompressible pixels,
base64 multiplies by 4/3 (< 5.4); the rest is margin."""
SMALL_REPLY_LIMIT = 16 * MIB
"""Replies without images: the options, a whole-job submit."""
MAX_PIXELS_FACTOR = 16
"""A returned image may have at most this many times the requested pixels (4x each side) before it is decoded."""
CHECK_TIMEOUT = 30.0
"""Longest wait for the start-up check, in seconds."""


def reply_limit(width: int, height: int, images: int) -> int:
    """Most bytes an img2img reply for ``images`` images of ``width`` x ``height`` pixels may have:
    ``REPLY_BASE_BYTES + (images + EXTRA_IMAGES) * width * height * REPLY_BYTES_PER_PIXEL``."""
    return REPLY_BASE_BYTES + (images + EXTRA_IMAGES) * width * height * REPLY_BYTES_PER_PIXEL


def encode_image(rgb: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def encode_mask(mask: np.ndarray) -> str:
    grey = np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey, mode="L").save(buf, format="PNG", compress_level=1)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def decode_image(data: str, *, max_pixels: int | None = None) -> np.ndarray:
    """A base64 image (optionally a ``data:`` URL) -> RGB uint8 HWC; more than ``max_pixels`` is refused
    before the pixels are decoded."""
    if "," in data[:100] and data.startswith("data:"):
        data = data.split(",", 1)[1]
    try:
        img = Image.open(io.BytesIO(base64.b64decode(data)))
        if max_pixels is not None and img.width * img.height > max_pixels:
            raise RendererError(f"The WebUI returned a {img.width}x{img.height} image, far larger than the frame "
                                f"asked for: check the WebUI's scripts and extensions that change the size")
        return np.asarray(img.convert("RGB"))
    except RendererError:
        raise
    except Exception as exc:  # noqa: BLE001
        reason = _one_line(str(exc)) or type(exc).__name__
        raise RendererError(f"The WebUI returned an image that cannot be decoded ({reason})") from None


def _one_line(text: str, limit: int = 300) -> str:
    """``text`` with every run of blanks and line breaks made one space, cut to ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


def _kind(value: Any) -> str:
    """How a JSON value is named in a message: 'a list', 'null', 'the number 123' ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "an empty text" if not value else "a text"
    return {list: "a list", dict: "an object"}.get(type(value), type(value).__name__)


def _detail(data: bytes | bytearray, content_type: str) -> str:
    """The one-line reason of an HTTP error reply (FastAPI's ``detail``, an ``error`` field, or its text)."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        text = data[:2000].decode("utf-8", errors="replace")
        if "html" in content_type or text.lstrip().startswith("<"):
            return "an HTML error page"
        return _one_line(text)
    if isinstance(body, dict):
        for key in ("detail", "error", "errors", "message"):
            if body.get(key):
                val = body[key]
                return _one_line(val if isinstance(val, str) else json.dumps(val))
    return _one_line(json.dumps(body))


def _looks_html(data: bytes | bytearray, content_type: str) -> bool:
    return "html" in content_type.lower() or data.lstrip()[:1] == b"<"


class _Address:
    """A WebUI address split for ``http.client``: scheme, host, port, path prefix, optional basic auth."""

    def __init__(self, url: str):
        text = str(url).strip()
        if "://" not in text:
            raise RendererError(f"WebUI address {text!r} has no scheme: write it as http://{text}")
        try:
            parts = urllib.parse.urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise RendererError(f"WebUI address {text!r} is not valid ({_one_line(str(exc))}): write it like "
                                f"{DEFAULT_URL}") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise RendererError(f"WebUI address {text!r} must start with http:// or https://, like {DEFAULT_URL}")
        if not parts.hostname:
            raise RendererError(f"WebUI address {text!r} has no host: write it like {DEFAULT_URL}")
        self.https = parts.scheme.lower() == "https"
        self.host = parts.hostname
        self.port = port
        self.prefix = parts.path.rstrip("/")
        self.headers: dict[str, str] = {}
        if parts.username is not None:  # --api-auth user:password given as http://user:password@host
            cred = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(cred.encode("utf-8")).decode("ascii")
        netloc = f"[{self.host}]" if ":" in self.host else self.host
        self.shown = f"{parts.scheme.lower()}://{netloc}{'' if port is None else f':{port}'}{self.prefix}"
        """The address for messages (no credentials)."""

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        return cls(self.host, self.port, timeout=timeout)


def check_timeout(timeout: float) -> float:
    """A deadline in seconds: finite and above 0 (else RendererError)."""
    try:
        value = float(timeout)
    except (TypeError, ValueError):
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        raise RendererError(f"timeout {timeout!r}: give a number of seconds above 0, e.g. 600")
    return value


SCHEDULER_FOR = {"karras": "Karras", "exponential": "Exponential", "polyexponential": "Polyexponential"}
"""Sigma schedules the API can reproduce: the host's scheduler of that name with our sigma_min/max/rho."""


class WebUIApiRenderer:
    """``render`` posts one img2img request per frame to ``url``; ``timeout`` (seconds) bounds each request."""

    sigma_schedules = tuple(SCHEDULER_FOR)

    def __init__(self, url: str = DEFAULT_URL, *, timeout: float = 600.0,
                 override_settings: dict[str, Any] | None = None, flag: str = "--api-url"):
        self.address = _Address(url)
        self.url = self.address.shown
        self.flag = flag
        """The command-line option that gave the address, for the advice in messages (--api-url, --backend)."""
        self.timeout = check_timeout(timeout)
        self.override_settings = dict(override_settings or {})

    # ---- transport ----

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None, *, limit: int,
              timeout: float, not_found: str) -> dict[str, Any]:
        """One request; its reply as a JSON object, or a one-line RendererError."""
        status, headers, data = self._exchange(method, path, payload, limit=limit, timeout=timeout)
        content_type = headers.get("Content-Type") or ""
        if 300 <= status < 400:
            where = _one_line(headers.get("Location") or "another address", 200)
            raise RendererError(f"The WebUI at {self.url} redirected {path} to {where}: give the address of the "
                                f"WebUI itself ({self.flag})")
        if status == 404:
            raise RendererError(not_found)
        if status >= 400:
            raise RendererError(f"The WebUI answered HTTP {status} for {path}: {_detail(data, content_type)}")
        try:
            body = json.loads(data)
        except (ValueError, RecursionError):
            what = "an HTML page" if _looks_html(data, content_type) else "something that is not JSON"
            raise RendererError(f"{self.url} answered {path} with {what}, not the WebUI's API: check {self.flag} "
                                f"and that the WebUI runs with --api") from None
        if not isinstance(body, dict):
            raise RendererError(f"{self.url} answered {path} with {_kind(body)} instead of a JSON object: check "
                                f"{self.flag} points at the WebUI (A1111 or Forge) started with --api")
        return body

    def _exchange(self, method: str, path: str, payload: dict[str, Any] | None, *, limit: int,
                  timeout: float) -> tuple[int, http.client.HTTPMessage, bytearray]:
        """Send one request and read the reply (status, headers, body) within ``timeout`` seconds in all."""
        deadline = time.monotonic() + timeout
        body = None if payload is None else json.dumps(payload).encode("utf-8")
        conn = self.address.connection(timeout)
        expired = threading.Event()
        watchdog = None
        try:
            try:
                conn.connect()  # bounded by the socket timeout
            except (OSError, http.client.HTTPException) as exc:
                if isinstance(exc, TimeoutError):
                    raise
                reason = _one_line(getattr(exc, "strerror", None) or exc) or type(exc).__name__
                raise RendererError(f"Cannot reach the WebUI at {self.url} ({reason}): start it with --api (or give "
                                    f"the right {self.flag}), then run the same command again to resume") from None
            sock = conn.sock

            def expire() -> None:
                expired.set()
                try:
                    sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked send/recv in the request's thread
                except OSError:
                    pass

            watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), expire)
            watchdog.daemon = True
            watchdog.start()
            headers = {"Accept": "application/json", **self.address.headers}
            if body is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, self.address.prefix + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = self._read_body(resp, path, limit)
            if expired.is_set():
                raise TimeoutError
            return resp.status, resp.headers, data
        except (OSError, http.client.HTTPException) as exc:
            raise self._transport_error(exc, path, timeout, expired.is_set()) from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
            conn.close()

    def _read_body(self, resp: http.client.HTTPResponse, path: str, limit: int) -> bytearray:
        """The reply's body, at most ``limit`` bytes (refused before reading when its length says more); one
        buffer, never copied, so a reply costs at most ``limit`` bytes of memory before it is parsed."""
        declared = resp.getheader("Content-Length")
        length = int(declared) if declared and declared.strip().isdigit() else None
        if length is not None and length > limit:
            raise self._too_big(path, limit, f"announces {length / MIB:.1f} MB, more")
        buf = bytearray()
        while True:
            chunk = resp.read1(1 << 16)
            if not chunk:
                break
            buf += chunk
            if len(buf) > limit:
                raise self._too_big(path, limit, "sent more")
        if length is not None and len(buf) < length:
            raise http.client.IncompleteRead(b"", length - len(buf))
        return buf

    def _too_big(self, path: str, limit: int, what: str) -> RendererError:
        return RendererError(f"The WebUI's reply to {path} {what} than the {limit / MIB:.1f} MB such a reply may "
                             f"have: stopped reading it; check the WebUI's extensions (one may add large images)")

    def _transport_error(self, exc: BaseException, path: str, timeout: float, expired: bool) -> RendererError:
        """The one-line error for a failure after the connection was made (or a timeout at any point)."""
        if expired or isinstance(exc, TimeoutError):
            return RendererError(f"The WebUI at {self.url} did not answer {path} within {timeout:g} s: check it is "
                                 f"not stuck (or raise --timeout), then run again to resume")
        if isinstance(exc, http.client.IncompleteRead):
            return RendererError(f"The WebUI's reply to {path} broke off ({exc.expected} bytes missing): check the "
                                 f"WebUI's console, then run again to resume")
        if isinstance(exc, http.client.RemoteDisconnected):
            return RendererError(f"The WebUI at {self.url} closed the connection without answering {path}: check "
                                 f"its console, then run again to resume")
        reason = _one_line(str(exc)) or type(exc).__name__
        return RendererError(f"The connection to the WebUI at {self.url} failed during {path} ({reason}): check "
                             f"the WebUI's console, then run again to resume")

    def interrupt(self) -> None:
        """Ask the WebUI to cut its current render short (``POST /sdapi/v1/interrupt``; it then answers that
        request with an unfinished image, which the caller must throw away). Errors are ignored: a backend
        that cannot be reached renders nothing anyway."""
        try:
            self._call("POST", "/sdapi/v1/interrupt", {}, limit=SMALL_REPLY_LIMIT,
                       timeout=min(self.timeout, CHECK_TIMEOUT), not_found="no interrupt")
        except Exception:  # noqa: BLE001 - best effort: the frame is discarded either way
            pass

    def check(self) -> dict[str, Any]:
        """Fail fast (before a job starts) if the WebUI is not reachable; returns its options."""
        return self._call("GET", "/sdapi/v1/options", limit=SMALL_REPLY_LIMIT,
                          timeout=min(self.timeout, CHECK_TIMEOUT),
                          not_found=f"{self.url} has no API: start the WebUI with --api")

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
        if request.noise is not None:
            raise SettingsError("noise_mode", "warped noise cannot be sent per frame over the img2img API: run the "
                                              "job inside the WebUI (--submit), or set noise_mode to seed")
        want = request.batch_size * request.n_iter
        path = "/sdapi/v1/img2img"
        body = self._call("POST", path, self.payload(request), timeout=self.timeout,
                          limit=reply_limit(request.width, request.height, want),
                          not_found=f"{self.url}{path} not found: start the WebUI with --api")
        images = body.get("images")
        frame = request.frame_index
        if not isinstance(images, list):
            raise RendererError(f"The WebUI's reply for frame {frame} has {_kind(images)} where its list of images "
                                f"should be: check {self.flag} points at the WebUI")
        if len(images) < want:
            raise RendererError(f"The WebUI returned {len(images)} images for frame {frame}, expected {want}")
        for k, item in enumerate(images[:want]):
            if not isinstance(item, str) or not item:
                raise RendererError(f"The WebUI's reply for frame {frame} has {_kind(item)} as image {k + 1}, not "
                                    f"a base64 image: check {self.flag} points at the WebUI")
        max_pixels = MAX_PIXELS_FACTOR * request.width * request.height
        return [decode_image(b, max_pixels=max_pixels) for b in images[:want]]

    def submit_job(self, settings, *, upload: bool = False) -> dict[str, Any]:
        """Run a whole job on the server through its vid2vid Script (``script_name: "vid2vid"``).

        The video goes as a server path, or as base64 data with ``upload``. Sampling settings travel as the
        img2img request's own fields; the rest as the Script's args (every value, in UI order). Returns the
        Script's ``vid2vid_*`` result fields (status, job_dir, video, info).
        """
        from pathlib import Path

        from .. import params, video_probe
        from ..pipeline import output_size

        s = settings
        info = video_probe.probe(s.video.input)  # first: refuses what is not a video (a FIFO would block the upload)
        width, height = output_size(info.width, info.height, s.video.width, s.video.height)
        if upload:
            video_arg = base64.b64encode(Path(s.video.input).read_bytes()).decode("ascii")
        else:
            video_arg = str(Path(s.video.input).resolve())
        args = params.api_args(s.replace(input=str(Path(s.video.input).resolve())))
        args[params.api_arg_names().index("input")] = video_arg
        return self._submit(s, args, width, height)

    def resume_job(self, job: str, *, redo_keyframes: str = "") -> dict[str, Any]:
        """Resume the job ``job`` (its folder name or id in the WebUI's vid2vid output folder) through the Script,
        with its own video and settings, after rendering ``redo_keyframes`` (frame numbers, e.g. ``"12, 30"``) of
        it again with another seed. The Script's args are by name: ``resume_job`` and ``redo_keyframes`` alone
        (every other value is the Script's default, and a resumed job runs with its stored settings). Returns the
        Script's ``vid2vid_*`` result fields, as :meth:`submit_job`."""
        from .. import params

        s = params.Settings()
        args = [{"resume_job": job, "redo_keyframes": redo_keyframes}]
        return self._submit(s, args, s.video.width or 512, s.video.height or 512)

    def submit_batch(self, settings, videos, *, upload: bool = False) -> dict[str, Any]:
        """Run a batch on the server in one request: the video argument is the list of the videos' paths (or,
        with ``upload``, of their bytes in base64; a path that is not a regular file goes as a path, and the
        server fails that video with its line). The Script runs each video as its own job
        (lib_vid2vid/batch.py); returns its ``vid2vid_*`` fields (status, batch, videos, info)."""
        from pathlib import Path

        from .. import batch, params

        sources = []
        for v in videos:
            p = Path(v)
            if upload and p.is_file():  # as a data URL: the Script then never takes it for a path
                sources.append("data:application/octet-stream;base64," + base64.b64encode(p.read_bytes()).decode())
            else:
                sources.append(str(p.resolve()))
        args = params.api_args(settings.replace(input=""))
        args[params.api_arg_names().index("input")] = sources
        side = batch.long_side(settings)  # the Script takes the larger side as every video's long side
        return self._submit(settings, args, side, side)

    def _submit(self, s, args: list[Any], width: int, height: int) -> dict[str, Any]:
        """POST the vid2vid Script's run with ``args``; its ``vid2vid_*`` result fields."""
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
        path = "/sdapi/v1/img2img"
        reply = self._call("POST", path, body, limit=SMALL_REPLY_LIMIT, timeout=self.timeout,
                           not_found=f"{self.url}{path} not found: start the WebUI with --api")
        info_text = reply.get("info")
        try:
            parsed = json.loads(info_text) if isinstance(info_text, str) and info_text else {}
        except (ValueError, RecursionError):
            parsed = {}
        extra = parsed.get("extra_generation_params") if isinstance(parsed, dict) else None
        if not isinstance(extra, dict) or "vid2vid_status" not in extra:
            raise RendererError(f"The WebUI at {self.url} did not run vid2vid: is the extension installed there?")
        result = {k[len("vid2vid_"):]: v for k, v in extra.items() if k.startswith("vid2vid_")}
        if result.get("status") == "error":
            raise RendererError(f"vid2vid on the WebUI: {_one_line(result.get('error'))}")
        return result
