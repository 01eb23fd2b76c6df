"""One job over several backends (issue 18): a Renderer that spreads frames over many WebUI APIs.

:class:`Dispatcher` holds one renderer per backend (``--backend URL`` repeated). The frame loop asks it for
``parallel`` (how many backends are alive) and hands it requests with :meth:`Dispatcher.submit`, which returns a
future; the loop still collects the futures in frame order and the job's owner alone writes frames, journal and
video, so resume, byte-exactness and the lock are those of one backend.

Scheduling: one feeder thread per backend takes the oldest waiting request from a shared queue and renders it
(an idle backend takes the next frame: fast and slow backends each get what they can do). A backend whose render
fails (unreachable, HTTP error, a Ray actor that died) is taken out and the request goes back to the front of the
queue for the others: no frame is lost, and since a failed render returns nothing, none is written twice. When
every backend is out, the waiting frames fail with the last backend's one-line error.

Health between frames: every ``health_every`` seconds a backend is asked its host identity before it takes the
next frame; one that does not answer, or answers with another setup than the job's (another model loaded), is
taken out the same way. A stop (:meth:`Dispatcher.interrupt`) cancels the waiting frames and asks the busy
backends to cut their render short; what they then return is thrown away (the futures raise ``Interrupted``),
so only frames rendered in full are written.

Engines: ``threads`` (default) calls each backend from a thread of this process; ``ray`` makes each backend a
Ray actor (``pip install .[ray]``: a local Ray instance, or the cluster at ``ray_address``) and the feeder
threads wait on the actors. Ray is imported only when asked for.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from .errors import Interrupted, RendererError, Vid2VidError
from .renderer import RenderRequest

ENGINES = ("threads", "ray")


class _Task:
    __slots__ = ("request", "future", "tried", "generation")

    def __init__(self, request: RenderRequest, generation: int = 0):
        self.request = request
        self.future: Future = Future()
        self.tried: list[str] = []
        self.generation = generation
        """The dispatcher's stop count when it was queued: a stop since makes its result void."""


class Dispatcher:
    """A Renderer over ``renderers`` (one per backend, each with ``render`` and optionally ``check`` and
    ``host_identity``); ``names`` name them in messages (their addresses)."""

    def __init__(self, renderers: Sequence[Any], names: Sequence[str] | None = None, *,
                 engine: str = "threads", on_out: Callable[[str, str], None] | None = None,
                 interrupters: Sequence[Callable[[], None] | None] | None = None, health_every: float | None = 10.0):
        if not renderers:
            raise Vid2VidError("No backend given: pass --backend URL at least once")
        self.renderers = list(renderers)
        self.names = list(names) if names is not None else [f"backend {k + 1}" for k in range(len(renderers))]
        self.engine = engine
        self.on_out = on_out
        """Called with (name, reason) when a backend is taken out."""
        self.alive = [True] * len(self.renderers)
        self.rendered = [0] * len(self.renderers)
        """Frames each backend rendered."""
        self.busy_s = [0.0] * len(self.renderers)
        """Seconds each backend spent rendering (its frames/s = rendered / busy_s)."""
        self.out_reasons: dict[str, str] = {}
        self.interrupters = list(interrupters) if interrupters is not None else [
            getattr(r, "interrupt", None) for r in self.renderers]
        """Per backend: asks it to cut its current render short (a Ray actor's client is busy rendering, so
        the driver's own client of the same address does it)."""
        self.health_every = health_every
        """Seconds between two health checks of a backend (None: none between frames)."""
        self._identity: Any = None
        self._checked_at = [time.monotonic()] * len(self.renderers)
        self._busy = [False] * len(self.renderers)
        self._generation = 0
        self._queue: collections.deque[_Task] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self._last_error: BaseException | None = None
        self._notices: list[str] = []
        self._threads = [threading.Thread(target=self._feed, args=(k,), daemon=True, name=f"vid2vid-backend-{k}")
                         for k in range(len(self.renderers))]
        for t in self._threads:
            t.start()

    # ---- what the loop asks ----

    @property
    def parallel(self) -> int:
        """Backends alive: how many frames may render at once."""
        return sum(self.alive)

    def check(self) -> None:
        """Fail fast if any backend is unreachable: its one-line error, naming it."""
        for r in self.renderers:
            check = getattr(r, "check", None)
            if callable(check):
                check()

    def host_identity(self) -> dict[str, Any]:
        """The backends' common host identity (lib_vid2vid/identity.py), so a job resumes across backend counts;
        a one-line error naming the backend whose setup differs (another model loaded ...)."""
        from . import identity

        ids = []
        for r in self.renderers:
            ask = getattr(r, "host_identity", None)
            ids.append(identity.normalise(ask() if callable(ask) else None))
        for k in range(1, len(ids)):
            if identity.canonical(ids[k]) != identity.canonical(ids[0]):
                raise RendererError(f"Backend {self.names[k]} has another setup than {self.names[0]} "
                                    f"({identity.describe(ids[0], ids[k])}): load the same model and settings on "
                                    f"every backend, or leave that one out")
        self._identity = ids[0]  # what the health checks between frames compare with
        return ids[0]

    def interrupt(self) -> None:
        """Stop now: cancel the waiting frames, ask the busy backends to cut their render short and void what
        they return (their futures raise Interrupted). Frames already returned are not affected; later
        ``submit`` calls render as usual."""
        with self._cond:
            self._generation += 1
            pending, self._queue = list(self._queue), collections.deque()
            busy = [k for k, b in enumerate(self._busy) if b and self.alive[k]]
        for task in pending:
            task.future.cancel()
        for k in busy:
            ask = self.interrupters[k]
            if callable(ask):
                ask()

    def take_notices(self) -> list[str]:
        with self._cond:
            out, self._notices = self._notices, []
        return out

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        """One frame on whichever backend is free (the sequential path)."""
        return self.submit(request).result()

    def submit(self, request: RenderRequest) -> Future:
        """Queue a frame; the future gives its images (or the error when every backend is out)."""
        with self._cond:
            task = _Task(request, self._generation)
            if not any(self.alive):
                task.future.set_exception(self._all_out())
                return task.future
            self._queue.append(task)
            self._cond.notify_all()
        return task.future

    def stats(self) -> list[tuple[str, int, float, bool]]:
        """(name, frames rendered, frames/s while rendering, alive) per backend."""
        return [(n, c, c / b if b > 0 else 0.0, a)
                for n, c, b, a in zip(self.names, self.rendered, self.busy_s, self.alive)]

    def close(self) -> None:
        with self._cond:
            self._closed = True
            pending, self._queue = list(self._queue), collections.deque()
            self._cond.notify_all()
        for task in pending:
            task.future.cancel()
        for t in self._threads:
            t.join(timeout=5)
        for r in self.renderers:
            close = getattr(r, "close", None)
            if callable(close):
                close()

    # ---- the feeders ----

    def _all_out(self) -> RendererError:
        last = self._last_error
        why = f": the last one failed with: {last}" if last is not None else ""
        return RendererError(f"Every backend failed ({', '.join(self.names)}){why}; check them, then run the same "
                             f"command again to resume")

    def _feed(self, k: int) -> None:
        renderer = self.renderers[k]
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                task = self._queue.popleft()
                self._busy[k] = True
            if task.future.cancelled():
                self._busy[k] = False
                continue
            sick = self._health(k)
            if sick is not None:
                self._take_out(k, task, sick)
                return
            t0 = time.perf_counter()
            try:
                images = renderer.render(task.request)
            except BaseException as exc:  # noqa: BLE001 - this backend is out; the frame goes to the others
                if self._void(k, task):
                    continue  # an interrupted render may fail: not the backend's fault
                self._take_out(k, task, exc)
                return
            if self._void(k, task):
                continue
            with self._cond:
                self._busy[k] = False
                self.rendered[k] += 1
                self.busy_s[k] += time.perf_counter() - t0
            if not task.future.cancelled():
                task.future.set_result(images)

    def _void(self, k: int, task: _Task) -> bool:
        """True (and the task's future raises Interrupted) if a stop came since the task was queued."""
        with self._cond:
            if task.generation == self._generation:
                return False
            self._busy[k] = False
        if not task.future.done():
            task.future.set_exception(Interrupted("stopped: this frame's render was cut short"))
        return True

    def _health(self, k: int) -> BaseException | None:
        """Backend ``k``'s health before its next frame, every ``health_every`` seconds: None if it answers
        with the job's setup, else why it is taken out."""
        if self.health_every is None or self._identity is None:
            return None
        now = time.monotonic()
        if now - self._checked_at[k] < self.health_every:
            return None
        self._checked_at[k] = now
        from . import identity

        ask = getattr(self.renderers[k], "host_identity", None)
        if not callable(ask):
            return None
        try:
            now_id = identity.normalise(ask())
        except Exception as exc:  # noqa: BLE001 - it stopped answering: out, like a failed render
            return exc
        if identity.canonical(now_id) != identity.canonical(self._identity):
            return RendererError(f"it now answers with another setup ({identity.describe(self._identity, now_id)})")
        return None

    def _take_out(self, k: int, task: _Task, exc: BaseException) -> None:
        name = self.names[k]
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        with self._cond:
            self.alive[k] = False
            self._busy[k] = False
            self._last_error = exc
            self.out_reasons[name] = reason
            note = (f"backend {name} taken out after {self.rendered[k]} frames ({reason}); its frames go to the "
                    f"other {sum(self.alive)}")
            self._notices.append(note)
            task.tried.append(name)
            if any(self.alive):
                self._queue.appendleft(task)  # first in line: frames finish in about the order they were asked
                self._cond.notify_all()
                waiting: list[_Task] = []
            else:
                waiting, self._queue = [task, *self._queue], collections.deque()
        if self.on_out is not None:
            self.on_out(name, reason)
        for t in waiting:
            t.future.set_exception(self._all_out())


# ---------------------------------------------------------------- Ray

def import_ray():
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise Vid2VidError("--engine ray needs Ray: pip install .[ray] (or pip install 'ray>=2.9')") from None
    return ray


class _RemoteBackend:
    """A backend owned by a Ray actor: ``render``/``check``/``host_identity`` are calls on the actor."""

    def __init__(self, ray, actor, name: str):
        self._ray, self._actor, self.name = ray, actor, name

    def _get(self, ref) -> Any:
        """The call's result; the actor's own error (a one-line RendererError) rather than Ray's wrapper with
        its remote traceback, or one line when the actor itself died."""
        exceptions = self._ray.exceptions
        try:
            return self._ray.get(ref)
        except exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, Exception):
                raise cause from None
            raise RendererError(f"Backend {self.name} failed in its Ray actor ({type(exc).__name__})") from None
        except exceptions.RayActorError as exc:
            raise RendererError(f"The Ray actor of backend {self.name} died ({type(exc).__name__}): check the Ray "
                                f"node, then run again to resume") from None

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        return self._get(self._actor.render.remote(request))

    def check(self) -> Any:
        return self._get(self._actor.check.remote())

    def host_identity(self) -> dict[str, Any]:
        return self._get(self._actor.host_identity.remote())

    def close(self) -> None:
        try:
            self._ray.kill(self._actor)
        except Exception:  # noqa: BLE001 - already gone
            pass


class _WebUIActor:
    """Runs in a Ray worker: one WebUI API client, built there from its address."""

    def __init__(self, url: str, timeout: float):
        from .host.webui_api import WebUIApiRenderer

        self.renderer = WebUIApiRenderer(url, timeout=timeout, flag="--backend")

    def render(self, request: RenderRequest) -> list[np.ndarray]:
        return self.renderer.render(request)

    def check(self) -> Any:
        return self.renderer.check()

    def host_identity(self) -> dict[str, Any]:
        return self.renderer.host_identity()


def start_ray(address: str | None = None, *, cpus: int = 1):
    """The ``ray`` module, initialised once: a local instance (no cluster, no dashboard; its actors import
    lib_vid2vid from where this runs), or the cluster at ``address``."""
    import os
    from pathlib import Path

    ray = import_ray()
    if not ray.is_initialized():
        here = str(Path(__file__).resolve().parent.parent)
        paths = [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}} if address is None else None
        if address is None:
            from .ray_env import keep_out_of_home

            keep_out_of_home()  # no ~/.ray/auth_token left in the user's home
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True,
                 runtime_env=env, num_cpus=None if address else max(cpus, 1))
    return ray


def ray_backends(urls: Sequence[str], *, timeout: float, address: str | None = None) -> list[_RemoteBackend]:
    """One Ray actor per WebUI address (each holds its own API client). Starts a local Ray instance (no
    cluster) unless ``address`` (``ray://host:10001`` or ``host:6379``) names one to join."""
    ray = start_ray(address, cpus=len(urls))
    actor_cls = ray.remote(num_cpus=0)(_WebUIActor)
    return [_RemoteBackend(ray, actor_cls.remote(u, timeout), u) for u in urls]


def webui_dispatcher(urls: Sequence[str], *, timeout: float = 600.0, engine: str = "threads",
                     ray_address: str | None = None) -> Dispatcher:
    """A Dispatcher over WebUI APIs at ``urls``, checked: every backend reachable (else its one-line error)."""
    if engine not in ENGINES:
        raise Vid2VidError(f"engine {engine!r}: choose one of {', '.join(ENGINES)}")
    from .host.webui_api import WebUIApiRenderer

    locals_ = [WebUIApiRenderer(u, timeout=timeout, flag="--backend") for u in urls]  # validates the addresses
    names = [r.url for r in locals_]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise Vid2VidError(f"--backend {dup} is given twice: give each backend once")
    for r in locals_:
        r.check()  # unreachable: its one-line error names the address
    renderers = ray_backends(names, timeout=timeout, address=ray_address) if engine == "ray" else locals_
    return Dispatcher(renderers, names, engine=engine, interrupters=[r.interrupt for r in locals_])
