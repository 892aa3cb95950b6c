"""Model · one hierarchy for the failures sagerun reports, and how a failed request is classified.

Each message says what to do next. The states a run can be in when a call does not fit them are
named errors; they are ``RuntimeError``s too, as the plain errors they replace were.
"""

from __future__ import annotations


class SagerunError(Exception):
    """Base class of every error sagerun raises on its own account."""


class QueueFullError(SagerunError):
    """Raised by ``log_metric`` when the queue is full and the run's policy is ``"raise"``.

    Nothing already logged is lost: only the point of the failing call was not queued.
    """


class BackendError(SagerunError):
    """A control call (create, load or update of the experiment, trial or run) failed for good."""


class RunStateError(SagerunError, RuntimeError):
    """A call does not fit the state the run is in; the message says what to do instead."""


class RunNotOpenError(RunStateError):
    """The call needs the run open, inside its ``with`` block."""


class RunClosedError(RunNotOpenError):
    """The run's ``with`` block has ended; nothing more can be logged to this object."""


class RunAlreadyEnteredError(RunStateError):
    """A ``Run`` object is entered once; open a new one with the same names to log to it again."""


class ForkedRunError(RunStateError):
    """The run was opened in the parent process; a forked child opens its own with ``load_run``."""


class EngineThreadError(SagerunError, RuntimeError):
    """A blocking call was made on sagerun's own event-loop thread, where waiting would deadlock."""


class EngineStoppedError(SagerunError, RuntimeError):
    """The sync facade's engine has shut down because the interpreter is exiting."""


class TransportError(SagerunError):
    """A whole metrics request failed; ``retryable`` and ``throttled`` tell the batcher what to do."""

    def __init__(self, message: str, *, retryable: bool, throttled: bool = False, unanswered: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.throttled = throttled
        self.unanswered = unanswered
        """The request may have reached the server before the failure: sending it again may duplicate."""


THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestThrottled", "RequestThrottledException", "RequestLimitExceeded", "SlowDown",
    "ProvisionedThroughputExceededException",
})


def classify(status: int, code: str, message: str) -> TransportError:
    """The ``TransportError`` for an error answer: throttling and 5xx are worth retrying."""
    if code in THROTTLE_CODES or status == 429:
        return TransportError(f"throttled: {code or status}", retryable=True, throttled=True)
    if status >= 500:
        return TransportError(f"server error {status} {code}", retryable=True)
    return TransportError(f"refused: {status} {code}: {message}", retryable=False)
