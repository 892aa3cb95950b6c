"""Integrations · the names a framework's run goes by across processes, and how a training that
ended without telling is described."""

from __future__ import annotations

import hashlib
import os
import sys

from .._model.environment import RUN_NAME, launch_id
from .._model.naming import generate_run_name

exported: set[str] = set()
"""Run names this process put in ``SAGERUN_RUN_NAME`` for the processes it starts (not for itself)."""


def shared_name(framework: str) -> str:
    """The run every rank of one launch opens: named after what they share, or (when the other
    ranks are started from this process, as Lightning's DDP starts them) generated here and handed
    to them in ``SAGERUN_RUN_NAME``."""
    shared = launch_id()
    if shared is not None:
        return f"{framework}-{hashlib.sha256(shared.encode()).hexdigest()[:12]}"
    name = generate_run_name()
    os.environ[RUN_NAME] = name
    exported.add(name)
    return name


def unfinished(framework: str) -> BaseException:
    """What ended a training that began again before it reached its end (it raised): the last
    uncaught exception where an interactive shell keeps it, else a description."""
    last = getattr(sys, "last_exc", None) or getattr(sys, "last_value", None)
    if isinstance(last, BaseException):
        return last
    return RuntimeError(f"the {framework} training ended without reaching its end (it raised)")
