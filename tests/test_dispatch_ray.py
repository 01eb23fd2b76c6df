"""One job on Ray workers that each own a diffusers renderer (lib_vid2vid/dispatch_ray.py, issue 18): a local Ray
instance with 2 CPU workers and a tiny random-weight model (CPU, offline). Ray starts once for the module and the
workers load the model in seconds, so the tests share what they can."""

from __future__ import annotations

import os
import signal
import socket
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from tests.diffusers_skip import require_diffusers

require_diffusers()
pytest.importorskip("ray", reason="the ray extra is not installed (pip install .[ray])")

from lib_vid2vid import ray_env  # noqa: E402
from lib_vid2vid.dispatch import start_ray  # noqa: E402
from lib_vid2vid.dispatch_ray import (  # noqa: E402
    WorkerDispatcher,
    diffusers_dispatcher,
    plan_workers,
    start_workers,
)
from lib_vid2vid.errors import RendererError, Vid2VidError  # noqa: E402
from lib_vid2vid.host.diffusers import DiffusersRenderer  # noqa: E402
from lib_vid2vid.params import Settings  # noqa: E402
from lib_vid2vid.pipeline import run_job  # noqa: E402
from lib_vid2vid.workspace import Job  # noqa: E402
from tests import tiny_diffusers as tiny  # noqa: E402
from tests.doubles import StopAfter  # noqa: E402

FRAMES = 8


def _settings(clip, out, **kw):
    base = dict(input=str(clip), output_dir=str(out), width=96, height=64, max_frames=FRAMES, seed=7, denoise=0.5,
                steps=4, prompt="a watercolour cat", report=False, comparison_video=False,
                # every frame rendered (the default renders keyframes only): these tests are about each rendered frame
                keyframe_mode="off")
    base.update(kw)
    return Settings().replace(**base)


def _frames(job_dir) -> list[bytes]:
    return [p.read_bytes() for p in sorted((Path(job_dir) / "frames" / "pass1").glob("*.png"))]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """An empty home folder for Ray's start: nothing of Ray's may land in it."""
    folder = tmp_path_factory.mktemp("home")
    old = os.environ.get("HOME")
    os.environ["HOME"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("HOME", None)
    else:
        os.environ["HOME"] = old


@pytest.fixture(scope="module")
def ray_local(home):
    """The module's local Ray instance with 3 CPUs (two workers and one more), started as the CLI starts it."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
    yield start_ray(None, cpus=3)
    ray.shutdown()


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    from tests.clips import make_clip

    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=FRAMES, size=(96, 64), fps=Fraction(12),
                     audio=False)


@pytest.fixture(scope="module")
def model(tiny_models):
    return tiny_models("sd")


@pytest.fixture(scope="module")
def renderer(model):
    return DiffusersRenderer(model)


@pytest.fixture(scope="module")
def reference(clip, renderer, tmp_path_factory):
    """The frames of the job on one diffusers renderer in this process."""
    res = run_job(_settings(clip, tmp_path_factory.mktemp("one")), renderer)
    assert res.status == "done" and res.frames_done == FRAMES
    return _frames(res.job_dir)


@pytest.fixture(scope="module")
def workers(ray_local, model):
    """Two CPU workers for the module (the last test kills one)."""
    d = diffusers_dispatcher(str(model), workers=2, ready_timeout=120)
    yield d
    d.close()


def test_cli_two_workers_render_the_bytes_of_one_renderer(ray_local, clip, model, reference, home, tmp_path,
                                                           capsys):
    from lib_vid2vid.__main__ import main

    argv = [str(clip), "--renderer", "diffusers", "--model", str(model), "--ray-address", "local", "--workers", "2",
            "--width", "96", "--height", "64", "--max-frames", str(FRAMES), "--seed", "7", "--denoise", "0.5",
            "--steps", "4", "--prompt", "a watercolour cat", "--no-report", "--no-comparison-video",
            "--keyframe-mode", "off", "--output-dir", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    (job_dir,) = (p for p in tmp_path.iterdir() if p.is_dir())
    assert _frames(job_dir) == reference
    assert "2 Ray workers, each with the model loaded once: ray worker 1 (" in err and "cpu 1 threads" in err
    assert "in parallel on 2 backends" in err
    counts = [int(line.split(": ")[1].split(" frames")[0]) for line in err.splitlines()
              if line.startswith("backend ray worker")]
    assert len(counts) == 2 and sum(counts) == FRAMES
    assert not list(home.rglob("auth_token")) and not (home / ".ray").exists()


def test_workers_load_once_and_share_the_one_renderer_identity(workers, renderer):
    infos = [w.describe() for w in workers.renderers]
    assert [i["loads"] for i in infos] == [1, 1] and len({i["pid"] for i in infos}) == 2
    assert all(i["device"] == "cpu" and i["threads"] == 1 for i in infos)  # tests run with OMP_NUM_THREADS=1
    assert workers.host_identity() == renderer.host_identity()
    assert workers.override_warning("Euler") is None and "DDIM takes no custom sigmas" in workers.override_warning(
        "DDIM")


def test_resume_across_worker_counts(workers, renderer, clip, reference, tmp_path):
    out = tmp_path / "a"
    stop = StopAfter(3)
    part = run_job(_settings(clip, out), workers, should_stop=stop, progress=stop.progress)
    assert part.status == "interrupted" and 3 <= part.frames_done < FRAMES
    done = run_job(_settings(clip, out), renderer)  # two workers -> one renderer
    assert done.status == "done" and done.job_dir == part.job_dir and _frames(done.job_dir) == reference
    out = tmp_path / "b"
    stop = StopAfter(2)
    part = run_job(_settings(clip, out), renderer, should_stop=stop, progress=stop.progress)
    before = sum(w.describe()["renders"] for w in workers.renderers)
    done = run_job(_settings(clip, out), workers)  # one renderer -> two workers
    assert done.status == "done" and done.job_dir == part.job_dir and _frames(done.job_dir) == reference
    assert sum(w.describe()["renders"] for w in workers.renderers) - before == FRAMES - part.frames_done
    assert [w.describe()["loads"] for w in workers.renderers] == [1, 1]


def test_a_worker_with_another_model_is_named(ray_local, workers, tiny_models, tmp_path):
    import ray

    other_model = tiny.make_sd(tmp_path / "other" / "sd", seed=5)  # same folder name, other weights
    (other,) = start_workers(ray, str(other_model), 1, gpu=False, threads=1, first=2, ready_timeout=120)
    first = workers.renderers[0]
    mine = type(first)(ray, first._actor, first.name)
    mine.close = lambda: None  # the module's worker stays
    d = WorkerDispatcher([mine, other], [mine.name, other.name])
    try:
        with pytest.raises(RendererError) as info:
            d.host_identity()
    finally:
        d.close()
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"Backend {other.name} has another setup than {mine.name}")
    assert "checkpoint" in msg and "load the same model" in msg


def test_missing_packages_and_model_are_one_line(clip, model, tmp_path, monkeypatch, capsys):
    from lib_vid2vid.__main__ import main

    base = [str(clip), "--renderer", "diffusers", "--model", str(model), "--ray-address", "local",
            "--output-dir", str(tmp_path / "out"), "--quiet"]
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "ray", None)  # import ray fails
        assert main(base) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "needs Ray: pip install .[ray]" in err
    with monkeypatch.context() as m:
        m.setitem(sys.modules, "transformers", None)
        assert main(base) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "The diffusers renderer needs transformers: pip install" in err
    missing = tmp_path / "no-such-model"
    assert main(base[:4] + [str(missing)] + base[5:]) == 1
    err = capsys.readouterr().err
    assert err == f"error: model {missing} not found: give a local diffusers folder (with model_index.json) or a " \
                  f".safetensors checkpoint\n"
    assert main([str(clip), "--workers", "2", "--output-dir", str(tmp_path / "out"), "--quiet"]) == 1
    assert "--workers needs --renderer diffusers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_worker_plan_from_the_cluster():
    assert plan_workers(gpus=4, cpus=32, workers=None, device="auto") == (4, True)
    assert plan_workers(gpus=4, cpus=32, workers=2, device="cuda") == (2, True)
    assert plan_workers(gpus=4, cpus=32, workers=3, device="cpu") == (3, False)
    assert plan_workers(gpus=0, cpus=2, workers=None, device="auto") == (1, False)
    for kw, text in ((dict(gpus=2, cpus=8, workers=3, device="auto"), "has 2 GPUs and each worker owns one"),
                     (dict(gpus=0, cpus=2, workers=3, device="auto"), "has 2 CPUs; give --workers 2 or fewer"),
                     (dict(gpus=0, cpus=8, workers=None, device="cuda"), "--device cuda: the Ray cluster has no GPU"),
                     (dict(gpus=1, cpus=8, workers=0, device="auto"), "--workers 0: give 1 or more")):
        with pytest.raises(Vid2VidError, match=text):
            plan_workers(**kw)


def test_a_cluster_nobody_answers_is_one_line(clip, model, tmp_path, capsys):
    from lib_vid2vid.__main__ import main

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    address = f"127.0.0.1:{sock.getsockname()[1]}"
    sock.close()  # nothing listens there now
    argv = [str(clip), "--renderer", "diffusers", "--model", str(model), "--ray-address", address,
            "--output-dir", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: No Ray cluster answers at {address} (")
    assert not (tmp_path / "out").exists()


def test_cluster_address():
    assert ray_env.cluster_address(None) is None and ray_env.cluster_address("local") is None
    assert ray_env.cluster_address("auto") == "auto"
    assert ray_env.cluster_address(" ray://head:10001 ") == "ray://head:10001"


def test_a_killed_worker_loses_no_frame(workers, clip, reference, tmp_path):
    """Runs last: it kills the module's second worker after 3 frames (SIGKILL of its process)."""
    victim = workers.renderers[1]
    pid = victim.describe()["pid"]
    before = list(workers.rendered)
    killed = []

    def progress(p):
        if p.done >= 3 and not killed:
            os.kill(pid, signal.SIGKILL)
            killed.append(p.done)

    res = run_job(_settings(clip, tmp_path), workers, progress=progress)
    assert res.status == "done" and killed and _frames(res.job_dir) == reference
    assert workers.alive == [True, False]
    # every frame rendered once: what the dead worker had in hand went to the other, nothing twice
    assert sum(workers.rendered) - sum(before) == FRAMES
    warnings = Job.open(res.job_dir).manifest.get("warnings", [])
    assert any(f"backend {victim.name} taken out" in w and "died" in w for w in warnings)
