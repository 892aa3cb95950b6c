"""Backends · the highest step SageMaker holds of each metric of a run: where a resumed run goes on.

DescribeTrialComponent names the run's metrics (its summaries have no step), and BatchGetMetrics
gives each one's steps (``Period`` and ``XAxisType`` ``IterationNumber``), up to 100 a request.
"""

from __future__ import annotations

from typing import Any

import botocore.exceptions

from .._model.errors import BackendError, TransportError
from .._model.session import Session
from .aws import call_with_retries

_QUERIES_PER_REQUEST = 100


async def highest_steps(session: Session, sagemaker: Any, metrics: Any, trial_component_name: str) -> dict[str, int]:
    """The highest step of each metric of ``trial_component_name``; empty for a run with none.

    Raises:
        BackendError: the trial component or its metrics could not be read.
    """
    try:
        described = await call_with_retries(session, sagemaker.describe_trial_component,
                                            TrialComponentName=trial_component_name)
        names = sorted({str(m["MetricName"]) for m in described.get("Metrics") or () if m.get("MetricName")})
        arn = described.get("TrialComponentArn")
        highest: dict[str, int] = {}
        for start in range(0, len(names), _QUERIES_PER_REQUEST):
            part = names[start:start + _QUERIES_PER_REQUEST]
            answer = await call_with_retries(session, metrics.batch_get_metrics, MetricQueries=[
                {"MetricName": name, "ResourceArn": arn, "MetricStat": "Last", "Period": "IterationNumber",
                 "XAxisType": "IterationNumber"} for name in part])
            for name, result in zip(part, answer.get("MetricQueryResults") or ()):
                steps = result.get("XAxisValues") or []
                if steps:
                    highest[name] = int(max(steps))
        return highest
    except (botocore.exceptions.ClientError, TransportError) as exc:
        raise BackendError(f"could not read the steps of run {trial_component_name} that SageMaker holds: {exc}. "
                           "Check the IAM permissions sagemaker:DescribeTrialComponent and BatchGetMetrics") from exc
