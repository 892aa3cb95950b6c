"""Model · what the drain needs of a transport, and where a sender process sends."""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol, Sequence

from .answers import ItemError
from .points import Point


class MetricsTarget(NamedTuple):
    """Where a sender process sends metrics: the endpoint (for ``kind`` ``"mlflow"``, the tracking
    URI), the region, and credentials (botocore's, possibly refreshable; the process gets frozen
    copies; ``None``: an MLflow server that takes no SigV4)."""

    endpoint_url: str
    region: str
    credentials: Any
    kind: str = "sagemaker"


class MetricsSink(Protocol):
    """What the drain needs of a backend: the batch size, the in-flight bound, and ``put_metrics``."""

    max_batch: int
    max_in_flight: int | None

    async def put_metrics(self, trial_component_name: str, points: Sequence[Point]) -> Sequence[ItemError]:
        """Deliver at most ``max_batch`` points; return the items refused (``TransportError`` when
        the whole request failed)."""
