"""Run · the lifecycle of one ``Run``: one state, and a named error for each call that does not fit it.

new → opening (entering) → open → closed; or forked, in a child process of the one that opened it.
``load_run()`` may lend an open run to nested ``with`` blocks, which neither open nor close it.
"""

from __future__ import annotations

import enum
import os

from .._model.errors import ForkedRunError, RunAlreadyEnteredError, RunClosedError, RunNotOpenError, RunStateError


class State(enum.Enum):
    NEW = "new"
    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"
    FORKED = "forked"


class Lifecycle:
    """Where one run is in its life; ``name`` is how messages call it (its ``repr``)."""

    def __init__(self, name: str, run_name: str, experiment_name: str) -> None:
        self.name = name
        self.run_name = run_name
        self.experiment_name = experiment_name
        self.state = State.NEW
        self._lent = 0  # nested entries load_run() handed out for this open run
        self._nested = 0  # nested blocks being run now
        self._parent_pid = 0

    def lend(self) -> None:
        """``load_run()`` hands out this run: if it is open, one more ``with`` on it nests."""
        if self.state is State.OPEN:
            self._lent += 1

    def enter(self) -> bool:
        """Begin a ``with`` block; ``True`` when it only nests in the block that opened the run.

        Raises:
            RunAlreadyEnteredError, ForkedRunError: the run was entered before.
        """
        if self._lent and self.state is State.OPEN:
            # `with load_run()` inside `with Run()` (the SageMaker SDK allows it): the outer block
            # opened the run and will close it; this one only lends it.
            self._lent -= 1
            self._nested += 1
            return True
        if self.state is State.FORKED:
            raise self.forked_error()
        if self.state is not State.NEW:
            raise RunAlreadyEnteredError(
                f"{self.name} has already been entered; a Run is entered once. To log more to the same "
                "run later, open a new Run with the same names (it loads the existing run)")
        self.state = State.OPENING
        return False

    def opened(self) -> None:
        self.state = State.OPEN

    def leave(self) -> bool:
        """End a ``with`` block; ``True`` when it was a nested one, or this process is a forked child
        of the one that opened the run: then nothing is to be closed here."""
        if self._nested:
            self._nested -= 1
            return True
        if self.state is State.FORKED:
            return True
        self.state = State.CLOSED
        return False

    def fork(self) -> None:
        """This process is a child forked from the one that opened the run."""
        if self.state in (State.OPENING, State.OPEN):
            self._parent_pid = os.getppid()
            self.state = State.FORKED

    def refusal(self) -> RunStateError | None:
        """Why points cannot be logged now (before entering they wait in the queue), or ``None``."""
        if self.state is State.CLOSED:
            return self.closed_error()
        if self.state is State.FORKED:
            return self.forked_error()
        return None

    def require_open(self, call: str) -> None:
        """Raises:
            RunNotOpenError, RunClosedError, ForkedRunError: ``call`` needs the run open, and it is not.
        """
        if self.state is State.OPEN:
            return
        if self.state is State.CLOSED:
            raise RunClosedError(f"{self.name} is closed: {call}() works inside the run's 'with' block; open the "
                                 "run again (the same names load it) to log more")
        if self.state is State.FORKED:
            raise self.forked_error()
        raise RunNotOpenError(f"{self.name} is not open: {call}() works inside the run's 'with' block")

    def closed_error(self) -> RunClosedError:
        return RunClosedError(f"{self.name} is closed: log inside the run's 'with' block, or open the run again "
                              "(the same names load it)")

    def forked_error(self) -> ForkedRunError:
        return ForkedRunError(
            f"sagerun: {self.name} was opened in process {self._parent_pid}, and this process ({os.getpid()}) was "
            "forked from it: its engine is not here, so a forked child cannot log to the parent's run. In the "
            "child, open the run on an engine of its own: "
            f"with load_run(run_name={self.run_name!r}, experiment_name={self.experiment_name!r}) as run: ...")
