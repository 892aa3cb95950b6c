"""The one retry policy: exponential backoff with full jitter, bounded by a deadline.

Built on tenacity; botocore's own retries are switched off for every client sagerun makes, so the
two never multiply.
"""

from __future__ import annotations

from typing import Any, Callable

import anyio
import tenacity

from .._exceptions import TransportError
from .._session import Session


def retrying(session: Session, *, deadline: float | None = None,
             on_retry: Callable[[tenacity.RetryCallState], Any] | None = None) -> tenacity.AsyncRetrying:
    """An ``AsyncRetrying`` that retries ``TransportError`` marked retryable until the deadline.

    The wait before attempt *n* is uniform in ``[0, min(retry_max_backoff, retry_initial * 2**n)]``
    (AWS's "full jitter"); a wait that would end past the deadline is not taken.
    """
    return tenacity.AsyncRetrying(
        sleep=anyio.sleep,
        wait=tenacity.wait_random_exponential(multiplier=session.retry_initial, max=session.retry_max_backoff),
        stop=tenacity.stop_before_delay(session.retry_deadline if deadline is None else deadline),
        retry=tenacity.retry_if_exception(lambda e: isinstance(e, TransportError) and e.retryable),
        before_sleep=on_retry,
        reraise=True,
    )
