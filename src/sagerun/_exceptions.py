"""One hierarchy for the failures sagerun reports; each message says what to do next."""

from __future__ import annotations


class SagerunError(Exception):
    """Base class of every error sagerun raises on its own account."""


class QueueFullError(SagerunError):
    """Raised by ``log_metric`` when the queue is full and the run's policy is ``"raise"``.

    Nothing already logged is lost: only the point of the failing call was not queued.
    """


class BackendError(SagerunError):
    """A control call (create, load or update of the experiment, trial or run) failed for good."""


class TransportError(SagerunError):
    """A whole metrics request failed; ``retryable`` and ``throttled`` tell the batcher what to do."""

    def __init__(self, message: str, *, retryable: bool, throttled: bool = False, unanswered: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.throttled = throttled
        self.unanswered = unanswered
        """The request may have reached the server before the failure: sending it again may duplicate."""
