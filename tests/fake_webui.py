"""A tiny stand-in for the WebUI's HTTP API on 127.0.0.1 (an ephemeral port), for client tests.

It implements GET /sdapi/v1/options, POST /sdapi/v1/interrupt and POST /sdapi/v1/img2img: it returns the init
image darkened by
``denoising_strength`` (so tests can check what was sent), records every payload and its headers, and can be
told to fail a given request with an HTTP status (``fail``) or to answer it with a raw reply that is valid
HTTP but wrong (``reply``, ``options_reply``; see the reply makers below: wrong JSON, a short body, a
redirect, bytes trickled one at a time, a flood). Every misbehaviour is bounded in time and size.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image

HOLD_SECONDS = 30.0
"""The longest a request waits for ``FakeWebUI.hold`` (a test that never sets it fails on its counts, not hangs)."""

Reply = Callable[[BaseHTTPRequestHandler], None]
"""Writes a whole raw reply (status line, headers, body) to ``handler.wfile``; the connection closes after."""


def json_reply(body, status: int = 200) -> Reply:
    """``body`` as JSON (any JSON value: a list, null ...)."""
    return raw_reply(json.dumps(body).encode(), status=status)


def raw_reply(body: bytes, status: int = 200, content_type: str = "application/json",
              length: int | None = None, headers: dict[str, str] | None = None) -> Reply:
    """``body`` with a Content-Length of ``length`` (default: the true length; more gives a short body)."""
    def write(h: BaseHTTPRequestHandler) -> None:
        h.send_response(status)
        h.send_header("Content-Type", content_type)
        h.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)
    return write


def redirect(location: str, status: int = 302) -> Reply:
    """A redirect; to the request's own path it is a loop."""
    return raw_reply(b"", status=status, headers={"Location": location})


def garbage(data: bytes = b"HELLO THERE\r\n\r\n") -> Reply:
    """Bytes that are not an HTTP reply."""
    def write(h: BaseHTTPRequestHandler) -> None:
        h.wfile.write(data)
    return write


class Drip:
    """One byte every ``interval`` seconds for at most ``seconds``: of the body after the headers, or (with
    ``headers_first=False``) of the status line itself. ``sent`` counts the bytes written."""

    def __init__(self, interval: float = 0.25, seconds: float = 15.0, headers_first: bool = True):
        self.interval, self.seconds, self.headers_first = interval, seconds, headers_first
        self.sent = 0

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        body = b'{"images": []}' + b" " * 10_000
        if self.headers_first:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.flush()
            data = body
        else:
            data = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
        end = time.monotonic() + self.seconds
        for k in range(len(data)):
            if time.monotonic() > end:
                return
            h.wfile.write(data[k:k + 1])
            h.wfile.flush()
            self.sent += 1
            time.sleep(self.interval)


class Flood:
    """A 200 reply of ``total`` bytes in 64 KiB writes, with or without a Content-Length announcing it.
    ``sent`` counts what was written before the client hung up."""

    def __init__(self, total: int, announce: bool, send: bool = True):
        self.total, self.announce, self.send = total, announce, send
        self.sent = 0

    def __call__(self, h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        if self.announce:
            h.send_header("Content-Length", str(self.total))
        h.end_headers()
        if not self.send:
            return
        chunk = b"A" * 65536
        h.wfile.write(b'{"images": ["')
        while self.sent < self.total:
            h.wfile.write(chunk)
            self.sent += len(chunk)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up on a misbehaving reply is what the tests want


class FakeWebUI:
    def __init__(self):
        self.payloads: list[dict] = []
        self.headers: list[dict[str, str]] = []
        self.fail: dict[int, tuple[int, dict]] = {}
        """request number (0-based) -> (HTTP status, JSON body)"""
        self.reply: dict[int, Reply] = {}
        """request number (0-based) -> a raw reply (json_reply, raw_reply, redirect, Drip, Flood ...)"""
        self.options_reply: Reply | None = None
        self.api = True
        self.options: dict = {"sd_model_checkpoint": "fake"}
        """What GET /sdapi/v1/options answers."""
        self.delay = 0.0
        """Seconds each img2img request sleeps before its reply (a GPU's time; no CPU)."""
        self.dead = False
        """Set (``kill``): every request from then on, the ones being served included, is closed unanswered."""
        self.hold: threading.Event | None = None
        """When set to an event, each img2img request waits for it (at most ``HOLD_SECONDS``) before it is
        answered: e.g. another fake's ``failed``, so that which backend gets which request does not depend on
        how the threads happen to be scheduled."""
        self.failed = threading.Event()
        """Set once a request has been answered with a ``fail`` status."""
        self.answered = threading.Event()
        """Set once a request has been answered with images."""
        self.started = 0
        """img2img requests received (counted on arrival; ``payloads`` holds those answered)."""
        self.interrupts = 0
        """POST /sdapi/v1/interrupt calls received."""
        self.cut_short = 0
        """img2img requests an interrupt cut short: answered at once with the init image unchanged (as the WebUI
        answers an interrupted render with an unfinished image)."""
        self._interrupt = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, code, body):
                json_reply(body, code)(self)

            def do_GET(self):
                outer.headers.append(dict(self.headers))
                if self.path == "/sdapi/v1/options" and outer.api:
                    if outer.options_reply is not None:
                        outer.options_reply(self)
                    else:
                        self._json(200, outer.options)
                else:
                    self._json(404, {"detail": "Not Found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(n))
                outer.headers.append(dict(self.headers))
                if self.path == "/sdapi/v1/interrupt" and outer.api:
                    outer.interrupts += 1
                    outer._interrupt.set()
                    self._json(200, {})
                    return
                if self.path != "/sdapi/v1/img2img" or not outer.api:
                    self._json(404, {"detail": "Not Found"})
                    return
                if outer.hold is not None:
                    outer.hold.wait(HOLD_SECONDS)
                outer._interrupt.clear()
                outer.started += 1
                cut = bool(outer.delay) and outer._interrupt.wait(outer.delay)
                if outer.dead:
                    self.close_connection = True
                    return
                k = len(outer.payloads)
                outer.payloads.append(payload)
                if k in outer.fail:
                    code, body = outer.fail[k]
                    self._json(code, body)
                    outer.failed.set()
                    return
                if k in outer.reply:
                    outer.reply[k](self)
                    return
                img = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload["init_images"][0]))).convert("RGB"))
                out = (img.astype(np.float32) * (1 - 0.5 * payload.get("denoising_strength", 0))).astype(np.uint8)
                if cut:
                    outer.cut_short += 1
                    out = img
                images = []
                for _ in range(payload.get("batch_size", 1) * payload.get("n_iter", 1)):
                    buf = io.BytesIO()
                    Image.fromarray(out).save(buf, format="PNG")
                    images.append(base64.b64encode(buf.getvalue()).decode())
                self._json(200, {"images": images, "parameters": {}, "info": "{}"})
                outer.answered.set()

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def kill(self) -> None:
        """Stop serving as a crashed WebUI would: requests in flight and new connections get no answer."""
        self.dead = True
        self.server.shutdown()
        self.server.server_close()

    def __exit__(self, *exc):
        if self.dead:
            return
        self.server.shutdown()
        self.server.server_close()
