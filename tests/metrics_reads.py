"""The recording fake's ``BatchGetMetrics``: the series it recorded, read back in the API's
documented shape, since moto answers that call 404.

Each query names a metric of a trial component (by its ARN, whose last path segment is the
trial component's name), a statistic (``Min``, ``Max``, ``Avg``, ``Count``, ``StdDev``, ``Last``)
and a period: ``IterationNumber`` groups the points by step, ``OneMinute``, ``FiveMinute`` and
``OneHour`` by time. The x-axis values are the steps (``XAxisType`` ``IterationNumber``) or the
epoch seconds of each group (``Timestamp``), ascending; ``Start`` and ``End`` bound the
timestamps. Requests are checked against botocore's model: 1 to 100 queries, every member
required but ``Start`` and ``End``, the enums and the ARN pattern.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import defaultdict
from typing import Any, Iterable

import botocore.session

Point = tuple[str, str, float, "int | None", float]  # trial component, name, value, step, timestamp
_PERIODS = {"OneMinute": 60, "FiveMinute": 300, "OneHour": 3600}


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker-metrics").operation_model("BatchGetMetrics")


def _stat(name: str, values: list[float]) -> float:
    if name == "Min":
        return min(values)
    if name == "Max":
        return max(values)
    if name == "Avg":
        return sum(values) / len(values)
    if name == "Count":
        return float(len(values))
    if name == "StdDev":
        return statistics.pstdev(values) if len(values) > 1 else 0.0
    return values[-1]  # Last


def check(body: Any) -> str | None:
    """The violation of a BatchGetMetrics body, or ``None``."""
    queries_shape = _model().input_shape.members["MetricQueries"]
    query_shape = queries_shape.member
    queries = body.get("MetricQueries") if isinstance(body, dict) else None
    if not isinstance(queries, list) or not 1 <= len(queries) <= queries_shape.metadata.get("max", 100):
        return "MetricQueries must be a list of 1 to 100 queries"
    arn = re.compile(query_shape.members["ResourceArn"].metadata["pattern"] + "$")
    for index, query in enumerate(queries):
        if not isinstance(query, dict):
            return f"MetricQueries[{index}] must be an object"
        for member in query_shape.required_members:
            if member not in query:
                return f"MetricQueries[{index}].{member} is required"
        for member in ("MetricStat", "Period", "XAxisType"):
            if query[member] not in query_shape.members[member].enum:
                return f"MetricQueries[{index}].{member} {query[member]!r} is not one of its values"
        if not arn.match(str(query["ResourceArn"])):
            return f"MetricQueries[{index}].ResourceArn {query['ResourceArn']!r} is not a SageMaker ARN"
    return None


def answer(points: Iterable[Point], body: dict[str, Any]) -> dict[str, Any]:
    """The BatchGetMetrics answer to ``body`` (checked), from the recorded ``points``."""
    wanted = {(str(q["ResourceArn"]).rsplit("/", 1)[-1], q["MetricName"]) for q in body["MetricQueries"]}
    series: dict[tuple[str, str], list[Point]] = defaultdict(list)
    for point in points:
        if (point[0], point[1]) in wanted:
            series[(point[0], point[1])].append(point)
    results = []
    for query in body["MetricQueries"]:
        found = series.get((str(query["ResourceArn"]).rsplit("/", 1)[-1], query["MetricName"]), [])
        start, end = query.get("Start", -math.inf), query.get("End", math.inf)
        groups: dict[float, list[Point]] = defaultdict(list)
        for point in found:
            if not start <= point[4] <= end:
                continue
            if query["Period"] == "IterationNumber":
                key = point[3] if point[3] is not None else 0
            else:
                key = point[4] // _PERIODS[query["Period"]] * _PERIODS[query["Period"]]
            groups[key].append(point)
        xs, ys = [], []
        for key in sorted(groups):
            group = sorted(groups[key], key=lambda p: p[4])
            by_time = query["XAxisType"] == "Timestamp" and query["Period"] == "IterationNumber"
            xs.append(group[-1][4] if by_time else key)
            ys.append(_stat(query["MetricStat"], [p[2] for p in group]))
        results.append({"Status": "Complete", "XAxisValues": xs, "MetricValues": ys})
    return {"MetricQueryResults": results}
