"""Run · after a fork, the runs the parent had open refuse points in the child, naming ``load_run``.

Their engine (the drain task, the sender process, the event loop it runs on) stayed in the parent,
which still delivers what they hold; a point logged to them in the child would never be sent.
"""

from __future__ import annotations

import os
import weakref
from typing import Protocol


class Forkable(Protocol):
    def _forked(self) -> None:
        """Called in a forked child for each run its parent had open."""


_open: weakref.WeakSet[Forkable] = weakref.WeakSet()


def opened(run: Forkable) -> None:
    _open.add(run)


def closed(run: Forkable) -> None:
    _open.discard(run)


def _after_fork_in_child() -> None:
    runs = list(_open)
    _open.clear()
    for run in runs:
        run._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)
