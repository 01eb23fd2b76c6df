"""Where Ray runs and what it leaves behind (``--ray-address``; lib_vid2vid/dispatch.py, dispatch_ray.py).

A local Ray instance keeps its session files (logs, sockets, object spill) under the system temp folder
(``/tmp/ray``, or ``$RAY_TMPDIR``), not in the home folder. One file would land there: Ray 2.5x turns token
authentication on for a new local instance and, when it finds no token, writes a new one to ``~/.ray/auth_token``
and keeps it. :func:`keep_out_of_home` gives Ray a token for this process only instead (authentication stays on;
nothing is written). Joining a cluster uses the cluster's own token as Ray finds it (``~/.ray/auth_token``,
``RAY_AUTH_TOKEN`` or ``RAY_AUTH_TOKEN_PATH``): that one is the user's, and left alone.
"""

from __future__ import annotations

import logging
import os
import secrets

LOCAL = ("local", "")
"""``--ray-address`` values that start a local Ray instance (no cluster)."""
AUTH_VARS = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def cluster_address(text: str | None) -> str | None:
    """``--ray-address`` -> what ``ray.init(address=...)`` takes: None (a local instance) for ``local`` or
    nothing; ``auto`` (the cluster ``ray start`` made on this machine) and ``ray://host:10001`` / ``host:6379``
    as given."""
    if text is None or text.strip().lower() in LOCAL:
        return None
    return text.strip()


def keep_out_of_home() -> None:
    """Before a local ``ray.init``: a random token in ``RAY_AUTH_TOKEN`` (this process and the Ray processes it
    starts), so Ray writes no ``~/.ray/auth_token``, and Ray's note that it turned authentication on is not
    printed. Nothing changes when the user set any of :data:`AUTH_VARS`."""
    if any(os.environ.get(k) for k in AUTH_VARS):
        return
    os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
