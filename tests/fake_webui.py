"""A tiny stand-in for the WebUI's HTTP API on 127.0.0.1 (an ephemeral port), for client tests.

It implements GET /sdapi/v1/options and POST /sdapi/v1/img2img: it returns the init image darkened by
``denoising_strength`` (so tests can check what was sent), records every payload, and can be told to
fail a given request with an HTTP status.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


class FakeWebUI:
    def __init__(self):
        self.payloads: list[dict] = []
        self.fail: dict[int, tuple[int, dict]] = {}
        """request number (0-based) -> (HTTP status, JSON body)"""
        self.api = True
        self.options: dict = {"sd_model_checkpoint": "fake"}
        """What GET /sdapi/v1/options answers."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, code, body):
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if self.path == "/sdapi/v1/options" and outer.api:
                    self._json(200, outer.options)
                else:
                    self._json(404, {"detail": "Not Found"})

            def do_POST(self):
                n = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(n))
                if self.path != "/sdapi/v1/img2img" or not outer.api:
                    self._json(404, {"detail": "Not Found"})
                    return
                k = len(outer.payloads)
                outer.payloads.append(payload)
                if k in outer.fail:
                    code, body = outer.fail[k]
                    self._json(code, body)
                    return
                img = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload["init_images"][0]))).convert("RGB"))
                out = (img.astype(np.float32) * (1 - 0.5 * payload.get("denoising_strength", 0))).astype(np.uint8)
                images = []
                for _ in range(payload.get("batch_size", 1) * payload.get("n_iter", 1)):
                    buf = io.BytesIO()
                    Image.fromarray(out).save(buf, format="PNG")
                    images.append(base64.b64encode(buf.getvalue()).decode())
                self._json(200, {"images": images, "parameters": {}, "info": "{}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
