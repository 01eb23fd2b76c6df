"""One job on several GPUs through Ray (issue 18): Ray actors that each own a GPU and a diffusers renderer.

``python -m lib_vid2vid VIDEO --renderer diffusers --model PATH --ray-address ADDR`` (``local``: a Ray instance
on this machine, no cluster; ``auto``: the cluster ``ray start`` made here; ``ray://host:10001`` or
``host:6379``: a cluster to join).

- **Workers.** One Ray actor (:class:`DiffusersWorker`) per GPU of the Ray cluster, each reserving
  ``num_gpus=1`` (Ray sets its ``CUDA_VISIBLE_DEVICES``), or ``--workers N`` of them; with no GPU (or
  ``--device cpu``) ``--workers N`` CPU workers (default 1), each reserving one CPU. A worker loads the model
  once, when it starts, and keeps it for every frame it renders; it returns images only.
- **The driver** (this process, the job's owner) plans, corrects and writes: frames, manifest, journal and video
  stay in the one job folder here, so resume, byte-exactness, the report and the lock are those of one machine.
  Scheduling, failover and the parallel/sequential choice are :class:`lib_vid2vid.dispatch.Dispatcher`'s: an idle
  worker takes the next frame; a worker that fails or dies (its process killed, its node lost) is taken out and
  its frame goes back to the front of the queue for the others, so no frame is lost or written twice.
- **Identity.** Every worker reports its host identity (the model's fingerprint, its configuration, LoRAs,
  precision, device: :meth:`DiffusersRenderer.host_identity`); workers that differ (another file at the same
  path on one node, a CPU among GPUs) stop the job before its first frame with one line naming the two workers
  and the difference. The job's identity is the workers' common one, which is the one-machine renderer's: an
  interrupted job resumes on one renderer, or on another worker count, with the same bytes.
- **CPU bytes.** On the CPU torch's result depends on its thread count (a reduction split over more threads sums
  in another order), so every CPU worker runs with this process's thread count (``torch.get_num_threads()``,
  set by ``OMP_NUM_THREADS``): its frames are byte-identical to a one-renderer run here. On a GPU the thread
  count does not change pixels and is left alone.

Ray and diffusers are imported only when asked for; missing ones, a missing model, a cluster that cannot be
joined or has too few GPUs are one-line errors before any worker starts. A cluster's nodes need this package
and the diffusers extra installed, and the model at the same path.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dispatch import Dispatcher, _RemoteBackend, import_ray, start_ray
from .errors import RendererError, Vid2VidError
from .ray_env import cluster_address
from .renderer import RenderRequest

DIFFUSERS_PACKAGES = ("diffusers", "transformers", "accelerate", "safetensors")
READY_TIMEOUT_S = 600.0
"""Default seconds to wait for every worker to start and load its model (a cold SDXL load from disk is about a
minute; a worker that waits for a GPU another job holds waits this long at most)."""


class DiffusersWorker:
    """Runs in a Ray actor: one :class:`~lib_vid2vid.host.diffusers.DiffusersRenderer`, loaded once here.

    A load that fails (model missing on this node, diffusers not installed there) does not kill the actor: the
    error is kept and every call raises it, so the driver gets its one line (Ray would report a dead actor)."""

    def __init__(self, model: str, config: str | None, loras: list[tuple[str, float]], device: str,
                 threads: int | None):
        self.error: Vid2VidError | None = None
        self.renderer = None
        self.loads = 0
        self.renders = 0
        self.threads = None
        t0 = time.perf_counter()
        try:
            from .host.diffusers import DiffusersRenderer

            self.renderer = DiffusersRenderer(model, config=config, loras=loras, device=device)
            self.loads += 1
            import torch

            if threads:  # CPU workers only: the driver's count, so the bytes are a one-machine run's
                torch.set_num_threads(int(threads))
            self.threads = torch.get_num_threads()
        except Vid2VidError as exc:
            self.error = exc
        except Exception as exc:  # noqa: BLE001 - anything else in the load is one line too
            self.error = RendererError(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")
        self.load_s = time.perf_counter() - t0

    def _ready(self) -> None:
        if self.error is not None:
            raise self.error

    def describe(self) -> dict[str, Any]:
        """Where this worker runs and what it holds: host, process id, GPU ids, device, threads, load seconds,
        and how often it loaded the model (once) and rendered."""
        import ray

        self._ready()
        return {"host": socket.gethostname(), "pid": os.getpid(), "gpus": [str(g) for g in ray.get_gpu_ids()],
                "device": self.renderer.device, "threads": self.threads, "load_s": round(self.load_s, 3),
                "loads": self.loads, "renders": self.renders}

    def check(self) -> None:
        self._ready()

    def host_identity(self) -> dict[str, Any]:
        self._ready()
        return self.renderer.host_identity()

    def render(self, request: RenderRequest) -> tuple[list[np.ndarray], list[str], float]:
        """(images RGB uint8 HWC, the renderer's notes so far, seconds inside the pipeline)."""
        self._ready()
        t0 = time.perf_counter()
        images = self.renderer.render(request)
        self.renders += 1
        return images, self.renderer.take_notices(), time.perf_counter() - t0


class RemoteWorker(_RemoteBackend):
    """The driver's side of one :class:`DiffusersWorker`: ``render`` returns the images and keeps the worker's
    notes and its seconds inside the pipeline (``pipeline_s``; the rest of a call is Ray's transport)."""

    def __init__(self, ray, actor, name: str):
        super().__init__(ray, actor, name)
        self.notices: list[str] = []
        self.pipeline_s = 0.0
        self.info: dict[str, Any] = {}

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        images, notices, seconds = self._get(self._actor.render.remote(request))
        self.notices = list(notices)
        self.pipeline_s += seconds
        return images

    def describe(self) -> dict[str, Any]:
        return self._get(self._actor.describe.remote())


class WorkerDispatcher(Dispatcher):
    """A :class:`~lib_vid2vid.dispatch.Dispatcher` over diffusers workers: it also answers what the job asks the
    diffusers renderer itself (which samplers take a sigma override) and passes on the workers' notes."""

    def __init__(self, workers: Sequence[RemoteWorker], names: Sequence[str]):
        from .host.diffusers import SIGMA_SAMPLERS

        super().__init__(workers, names, engine="ray")
        self.sigma_samplers = SIGMA_SAMPLERS
        self.started = f"{len(workers)} Ray workers, each with the model loaded once: " + "; ".join(
            f"{w.name} {w.info.get('device', '?')}"
            + (f" {w.info['threads']} threads" if str(w.info.get("device", "")) == "cpu" else "")
            + f", loaded in {w.info.get('load_s', 0):.1f} s" for w in workers)
        """One line for the console: the workers, their device and how long each took to load the model."""

    def override_warning(self, sampler: str | None, schedule: str = "karras") -> str | None:
        from .host.diffusers import override_warning

        return override_warning(sampler, schedule)

    def take_notices(self) -> list[str]:
        """The dispatcher's new notes (a worker taken out), then every worker's notes so far (the job logs each
        note once)."""
        out = super().take_notices()
        for w in self.renderers:
            out += [n for n in w.notices if n not in out]
        return out


def check_packages(ray_address: str | None) -> None:
    """One line for a missing engine (ray) or, when the workers run here, a missing diffusers package."""
    import_ray()
    if ray_address is None:
        from .host.diffusers import EXTRA_HINT

        for name in DIFFUSERS_PACKAGES:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise RendererError(f"The diffusers renderer needs {name}: {EXTRA_HINT}")


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """One line when nothing answers at a cluster's ``host:port`` (``ray://host:port`` too): Ray itself would
    retry for minutes, printing its warnings. ``auto`` is left to Ray (it fails at once without a cluster)."""
    head = address.split("://", 1)[-1]
    host, sep, port = head.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise Vid2VidError(f"No Ray cluster answers at {address} ({exc.strerror or type(exc).__name__}): start it "
                           f"(ray start --head), check the address, or use --ray-address local") from None


def _join(address: str | None, cpus: int):
    """Ray, started here (``address`` None) or joined; a cluster that cannot be joined is one line."""
    if address is None:
        return start_ray(None, cpus=cpus)
    check_reachable(address)
    try:
        return start_ray(address)
    except Vid2VidError:
        raise
    except Exception as exc:  # noqa: BLE001 - ConnectionError, RuntimeError, auth errors ... : one line
        raise Vid2VidError(f"Cannot join the Ray cluster at {address} ({type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}): start it (ray start --head) or check the "
                           f"address; --ray-address local starts Ray on this machine") from None


def plan_workers(gpus: float, cpus: float, workers: int | None, device: str) -> tuple[int, bool]:
    """(how many workers, whether each owns a GPU) from the cluster's GPUs and CPUs, ``--workers`` and
    ``--device``; a one-line error when the cluster cannot hold them."""
    if workers is not None and workers < 1:
        raise Vid2VidError(f"--workers {workers}: give 1 or more")
    gpus = int(gpus)
    if device == "cpu" or (device == "auto" and gpus == 0):
        n = workers or 1
        if n > int(cpus):
            raise Vid2VidError(f"--workers {n}: the Ray cluster has {int(cpus)} CPUs; give --workers "
                               f"{max(1, int(cpus))} or fewer")
        return n, False
    if gpus == 0:
        raise Vid2VidError(f"--device {device}: the Ray cluster has no GPU; use --device cpu (CPU workers) or "
                           f"join a cluster with GPUs")
    n = workers or gpus
    if n > gpus:
        raise Vid2VidError(f"--workers {n}: the Ray cluster has {gpus} GPUs and each worker owns one; give "
                           f"--workers {gpus} or fewer")
    return n, True


def start_workers(ray, model: str, n: int, *, gpu: bool, config: str | None = None,
                  loras: Sequence[tuple[str, float]] = (), threads: int | None = None,
                  ready_timeout: float = READY_TIMEOUT_S, first: int = 1) -> list[RemoteWorker]:
    """``n`` started workers (each has loaded the model), named ``ray worker K (host pid, GPU g)``; a worker
    that cannot load it, or does not start within ``ready_timeout`` seconds, is one line and no worker is
    left running."""
    options: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0}
    if gpu:
        options["num_gpus"] = 1
    actor_cls = ray.remote(DiffusersWorker).options(**options)
    device = "cuda" if gpu else "cpu"  # a GPU worker sees only its own GPU (CUDA_VISIBLE_DEVICES): cuda:0
    loras = [(str(Path(p).expanduser().resolve()), float(w)) for p, w in loras]
    actors = [actor_cls.remote(str(model), config, loras, device, None if gpu else threads) for _ in range(n)]
    workers = [RemoteWorker(ray, a, f"ray worker {first + k}") for k, a in enumerate(actors)]
    refs = [a.describe.remote() for a in actors]
    ready, waiting = ray.wait(refs, num_returns=len(refs), timeout=ready_timeout)
    try:
        if waiting:
            k = refs.index(waiting[0])
            raise RendererError(f"{workers[k].name} did not start within {ready_timeout:.0f} s (no free "
                                f"{'GPU' if gpu else 'CPU'} in the Ray cluster?): free one, or give fewer --workers")
        for w, ref in zip(workers, refs):
            try:
                w.info = w._get(ref)
            except Vid2VidError as exc:
                raise RendererError(f"{w.name}: {exc}") from None
    except BaseException:
        for w in workers:
            w.close()
        raise
    for w in workers:
        gpus = w.info.get("gpus") or []
        w.name = f"{w.name} ({w.info['host']} pid {w.info['pid']}{', GPU ' + ','.join(gpus) if gpus else ''})"
    return workers


def diffusers_dispatcher(model: str, *, config: str | None = None, loras: Sequence[tuple[str, float]] = (),
                         device: str = "auto", ray_address: str | None = "local", workers: int | None = None,
                         ready_timeout: float = READY_TIMEOUT_S) -> WorkerDispatcher:
    """Ray workers that each own a GPU (or a CPU) and the model, behind one Renderer (see the module docstring).
    ``ray_address``: ``local`` / None, ``auto``, or a cluster's address."""
    address = cluster_address(ray_address)
    check_packages(address)
    if address is None:  # the workers read the model here: check it before Ray starts (one line, seconds saved)
        from .host.diffusers import inspect_model

        inspect_model(model, config)
        model = str(Path(model).expanduser().resolve())
        config = str(Path(config).expanduser().resolve()) if config else None
    threads = _torch_threads()
    local_gpus = _local_gpus(device) if address is None else 0
    want_cpus = (workers or 1) if (device == "cpu" or not local_gpus) else (workers or local_gpus)
    ray = _join(address, cpus=want_cpus)
    resources = ray.cluster_resources()
    n, gpu = plan_workers(resources.get("GPU", 0), resources.get("CPU", 0), workers, device)
    started = start_workers(ray, model, n, gpu=gpu, config=config, loras=loras, threads=threads,
                            ready_timeout=ready_timeout)
    return WorkerDispatcher(started, [w.name for w in started])


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.get_num_threads()


def _local_gpus(device: str) -> int:
    if device == "cpu":
        return 0
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0
