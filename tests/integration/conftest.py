"""The ``webui`` fixture: a real WebUI on the CPU, once per configured host.

Hosts (each test runs once per host whose variable is set; a host whose variable is unset is skipped):

- AUTOMATIC1111 stable-diffusion-webui: ``A1111_DIR`` (Python: ``A1111_PYTHON``, default $A1111_DIR/venv/bin/python),
  with a tiny random-weight SD1 checkpoint made for each run (make_tiny_sd.py, seconds).
- Forge (lllyasviel/stable-diffusion-webui-forge): ``FORGE_DIR`` (Python: ``FORGE_PYTHON``, default
  $FORGE_DIR/venv/bin/python), with a full-size SD1.5-shaped checkpoint of random fp16 weights built from
  Forge's own configs (make_forge_sd15.py, about 2 GB and a minute): Forge cannot load a shrunk model. When
  ``VID2VID_TEST_MODEL_CACHE`` names a folder it is kept there, under a name that changes with the script and
  Forge's SD1.5 configs, so repeated runs reuse it; otherwise it is made in the test's tmp for each run.

Each WebUI's environment must be ready for ``--skip-prepare-environment``. The fixture links this repository
into the WebUI's extensions/ folder for the duration, runs the extension's install.py as the WebUI would,
starts the WebUI on a free loopback port with its settings in a temporary folder (vid2vid's output folder
included), and removes the link afterwards.

A test module can change what the WebUI starts with by overriding these module-scoped fixtures (same name):
``webui_host`` (e.g. only ``A1111``, for a test of an A1111-only extension), ``webui_checkpoint``,
``webui_extensions`` and ``webui_args``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class Host:
    name: str
    dir_var: str
    python_var: str
    cpu_args: tuple[str, ...]
    # the interrupt + resume test: frames long enough to interrupt mid-job, few enough to finish in minutes
    interrupt_steps: int
    interrupt_size: int
    interrupt_frames: int
    interrupt_after: int

    @property
    def dir(self) -> str | None:
        return os.environ.get(self.dir_var) or None

    def python(self) -> str:
        return os.environ.get(self.python_var) or str(Path(self.dir) / "venv" / "bin" / "python")


A1111 = Host("a1111", "A1111_DIR", "A1111_PYTHON", ("--use-cpu", "all", "--no-half"),
             interrupt_steps=20, interrupt_size=128, interrupt_frames=16, interrupt_after=4)
# Forge's full-size UNet takes seconds per step on the CPU: small frames, few steps
FORGE = Host("forge", "FORGE_DIR", "FORGE_PYTHON", ("--always-cpu",),
             interrupt_steps=4, interrupt_size=64, interrupt_frames=6, interrupt_after=2)
HOSTS = (A1111, FORGE)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "DO_NOT_TRACK": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("PYTHONPATH", None)
    return env


def _a1111_checkpoint(webui_dir: Path, python: str, tmp: Path, env: dict) -> Path:
    subprocess.run([python, str(HERE / "make_tiny_sd.py"), "--webui-dir", str(webui_dir),
                    "--out-dir", str(tmp / "model")], check=True, env=env, cwd=str(webui_dir), timeout=300)
    return tmp / "model" / "tiny.safetensors"


def _forge_checkpoint(webui_dir: Path, python: str, tmp: Path, env: dict) -> Path:
    """The cached random SD1.5 checkpoint; its name hashes what defines it (the script, Forge's configs)."""
    digest = hashlib.sha256((HERE / "make_forge_sd15.py").read_bytes())
    configs = webui_dir / "backend" / "huggingface" / "runwayml" / "stable-diffusion-v1-5"
    for part in ("unet", "vae", "text_encoder"):
        digest.update((configs / part / "config.json").read_bytes())
    cache = os.environ.get("VID2VID_TEST_MODEL_CACHE")
    path = (Path(cache) if cache else tmp / "model") / f"forge-sd15-random-{digest.hexdigest()[:16]}.safetensors"
    if not path.is_file():
        subprocess.run([python, str(HERE / "make_forge_sd15.py"), "--forge-dir", str(webui_dir), "--out", str(path)],
                       check=True, env=env, cwd=str(webui_dir), timeout=1200)
    return path


CHECKPOINT = {"a1111": _a1111_checkpoint, "forge": _forge_checkpoint}


def _wait_until_up(proc: subprocess.Popen, url: str, log: Path, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"WebUI exited: {log.read_text()[-3000:]}")
        # No request before the WebUI prints its startup time: one that comes before it adds its middleware
        # kills it ("Cannot add middleware after an application has started"), and its API answers while it
        # still computes the scripts' default args (an img2img request then gets script_args cut short).
        if "Startup time:" in log.read_text(errors="replace"):
            try:
                if requests.get(url + "/sdapi/v1/options", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
        time.sleep(1)
    raise RuntimeError(f"WebUI did not start: {log.read_text()[-3000:]}")


@pytest.fixture(scope="module", params=[
    pytest.param(h, id=h.name, marks=pytest.mark.skipif(not h.dir, reason=f"set {h.dir_var} to a {h.name} checkout"))
    for h in HOSTS])
def webui_host(request) -> Host:
    """The host the module's tests run against: each configured one in turn."""
    return request.param


@pytest.fixture(scope="module")
def webui_checkpoint():
    """Path of the checkpoint the WebUI starts with; None: the host's own random one (see the module docstring)."""
    return None


@pytest.fixture(scope="module")
def webui_extensions():
    """{folder name under extensions/: path} linked into the WebUI besides vid2vid, removed afterwards."""
    return {}


@pytest.fixture(scope="module")
def webui_args():
    """Extra command-line arguments for the WebUI."""
    return []


@pytest.fixture(scope="module")
def webui(webui_host, webui_checkpoint, webui_extensions, webui_args, tmp_path_factory):
    host: Host = webui_host
    webui_dir = Path(host.dir)
    python = host.python()
    tmp = tmp_path_factory.mktemp(f"webui-{host.name}")
    env = _env()
    ckpt = webui_checkpoint or CHECKPOINT[host.name](webui_dir, python, tmp, env)
    link = webui_dir / "extensions" / "sd-webui-vid2vid-under-test"
    links = [link] + [webui_dir / "extensions" / name for name in webui_extensions]
    link.parent.mkdir(exist_ok=True)
    for lk, target in zip(links, [ROOT, *webui_extensions.values()]):
        if lk.is_symlink():
            lk.unlink()
        lk.symlink_to(target, target_is_directory=True)
    # what the WebUI does for an extension on a normal start: run its install.py (through the WebUI's launch module)
    subprocess.run([python, "-c", "import runpy, sys; sys.argv = ['install.py']; "
                    f"runpy.run_path({str(link / 'install.py')!r})"], check=True, env=env, cwd=str(webui_dir),
                   timeout=600)
    output_dir = tmp / "vid2vid-outputs"  # the WebUI's own vid2vid output folder: nothing lands in the checkout
    (tmp / "config.json").write_text(json.dumps({"vid2vid_output_dir": str(output_dir)}))
    port = _free_port()
    log = open(tmp / "webui.log", "w")
    proc = subprocess.Popen(
        [python, "launch.py", "--skip-prepare-environment", *host.cpu_args, "--api", "--port", str(port),
         "--skip-torch-cuda-test", "--no-download-sd-model", "--disable-safe-unpickle", "--ckpt", str(ckpt),
         "--ui-settings-file", str(tmp / "config.json"), "--ui-config-file", str(tmp / "ui-config.json"),
         *webui_args],
        cwd=str(webui_dir), env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, tmp / "webui.log", 600)
        yield {"url": url, "tmp": tmp, "log": tmp / "webui.log", "host": host, "output_dir": output_dir}
    finally:
        # a WebUI that exited on its own (a failed start) has no group left: its error above must not be hidden
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        for lk in links:
            lk.unlink(missing_ok=True)
