"""Quick checks of the SageMaker Metrics fake itself, through real aiobotocore clients."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aioboto3
import aiohttp
import botocore.exceptions
import orjson
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from metrics_fake import MetricsFake

# `metrics_fake` (conftest.py): the session's fake, reset to no points and no faults.


@asynccontextmanager
async def metrics_client(url: str) -> AsyncIterator[Any]:
    # total_max_attempts=1: exactly one request per call, so counts are exact.
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"})
    async with aioboto3.Session().client(
        "sagemaker-metrics", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing", config=config,
    ) as client:
        yield client


def item(i: int, **extra: Any) -> dict[str, Any]:
    return {"MetricName": f"m{i}", "Timestamp": 1_700_000_000 + i, "Step": i, "Value": i / 4, **extra}


@pytest.mark.asyncio
async def test_records_exact_points(metrics_fake: MetricsFake) -> None:
    async with metrics_client(metrics_fake.url) as client:
        await client.batch_put_metrics(TrialComponentName="exp-run", MetricData=[item(0), item(1)])
        await client.batch_put_metrics(
            TrialComponentName="exp-run",
            MetricData=[{"MetricName": "loss", "Timestamp": 1_700_000_000, "Value": 2}])
    assert metrics_fake.points == [
        {"trial_component": "exp-run", "name": "m0", "value": 0.0, "step": 0, "timestamp": 1_700_000_000.0},
        {"trial_component": "exp-run", "name": "m1", "value": 0.25, "step": 1, "timestamp": 1_700_000_001.0},
        {"trial_component": "exp-run", "name": "loss", "value": 2.0, "step": None, "timestamp": 1_700_000_000.0},
    ]
    assert metrics_fake.requests == 2 and metrics_fake.violations == []


@pytest.mark.asyncio
@pytest.mark.parametrize("name, data, fragment", [
    ("exp-run", [item(i) for i in range(11)], "1..10 items"),
    ("exp-run", [item(0, Value=math.nan)], "non-finite 'NaN'"),
    ("exp-run", [item(0, Value=-math.inf)], "non-finite '-Infinity'"),
    ("Exp_Run", [item(0)], "does not match"),  # pattern must match the whole name
])
async def test_contract_violations(metrics_fake: MetricsFake, name: str, data: list, fragment: str) -> None:
    async with metrics_client(metrics_fake.url) as client:
        with pytest.raises(ClientError) as err:
            await client.batch_put_metrics(TrialComponentName=name, MetricData=data)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(metrics_fake.violations) == 1 and fragment in metrics_fake.violations[0]
    assert metrics_fake.points == []


@pytest.mark.asyncio
async def test_fail_next_throttles_then_recovers(metrics_fake: MetricsFake) -> None:
    metrics_fake.configure(fail_next={"throttle": 1})
    async with metrics_client(metrics_fake.url) as client:
        with pytest.raises(ClientError) as err:
            await client.batch_put_metrics(TrialComponentName="exp-run", MetricData=[item(0)])
        await client.batch_put_metrics(TrialComponentName="exp-run", MetricData=[item(1)])
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert [p["name"] for p in metrics_fake.points] == ["m1"]
    assert metrics_fake.stats["faults"] == {"throttle": 1} and metrics_fake.requests == 2


@pytest.mark.asyncio
async def test_item_errors_echo_indexes_and_keep_the_rest(metrics_fake: MetricsFake) -> None:
    metrics_fake.configure(seed=7, item_error_rates={"CONFLICT_ERROR": 0.5})
    async with metrics_client(metrics_fake.url) as client:
        resp = await client.batch_put_metrics(
            TrialComponentName="exp-run", MetricData=[item(i) for i in range(10)])
    failed = {e["MetricIndex"] for e in resp["Errors"]}
    assert 0 < len(failed) < 10, "seed 7 should fail some items, not all"
    assert {e["Code"] for e in resp["Errors"]} == {"CONFLICT_ERROR"}
    assert [p["name"] for p in metrics_fake.points] == [f"m{i}" for i in range(10) if i not in failed]
    assert metrics_fake.stats["faults"] == {"item:CONFLICT_ERROR": len(failed)}


@pytest.mark.asyncio
async def test_control_endpoints_over_http(metrics_fake: MetricsFake) -> None:
    put = {"TrialComponentName": "exp-run", "MetricData": [item(0)]}
    async with aiohttp.ClientSession(metrics_fake.url) as http:
        async with http.post("/_fake/config", data=orjson.dumps({"bogus_rate": 1})) as r:
            assert r.status == 400
        async with http.post("/_fake/config", data=orjson.dumps({"fail_next": {"503": 1}})) as r:
            assert r.status == 200
        async with http.put("/BatchPutMetrics", data=orjson.dumps(put)) as r:
            assert r.status == 503 and r.headers["x-amzn-ErrorType"] == "ServiceUnavailable"
        async with http.put("/BatchPutMetrics", data=orjson.dumps(put)) as r:
            assert r.status == 200 and orjson.loads(await r.read()) == {}
        async with http.get("/_fake/points") as r:
            assert [p["name"] for p in orjson.loads(await r.read())] == ["m0"]
        async with http.get("/_fake/stats") as r:
            assert orjson.loads(await r.read()) == {
                "requests": 2, "points": 1, "distinct_points": 1, "system_points": 0, "violations": [], "faults": {"503": 1}}
        async with http.post("/_fake/reset") as r:
            assert r.status == 200
    assert metrics_fake.stats == {"requests": 0, "points": 0, "distinct_points": 0, "system_points": 0, "violations": [], "faults": {}}


@pytest.mark.asyncio
async def test_down_resets_connections(metrics_fake: MetricsFake) -> None:
    metrics_fake.configure(down=True)
    async with metrics_client(metrics_fake.url) as client:
        with pytest.raises(botocore.exceptions.ConnectionClosedError):
            await client.batch_put_metrics(TrialComponentName="exp-run", MetricData=[item(0)])
    assert metrics_fake.points == [] and metrics_fake.stats["faults"]["down"] >= 1


def test_batch_get_metrics_reads_back_what_was_recorded(metrics_fake):
    import boto3

    client = boto3.client("sagemaker-metrics", endpoint_url=metrics_fake.url, region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x")
    client.batch_put_metrics(TrialComponentName="tc-1", MetricData=[
        {"MetricName": "loss", "Timestamp": 1_700_000_000 + i, "Step": i // 2, "Value": float(i)} for i in range(6)])
    arn = "arn:aws:sagemaker:us-east-1:123456789012:experiment-trial-component/tc-1"
    queries = [{"MetricName": "loss", "ResourceArn": arn, "MetricStat": stat, "Period": "IterationNumber",
                "XAxisType": "IterationNumber"} for stat in ("Last", "Avg", "Count")]
    queries.append({"MetricName": "loss", "ResourceArn": arn, "MetricStat": "Max", "Period": "OneMinute",
                    "XAxisType": "Timestamp"})
    queries.append({"MetricName": "acc", "ResourceArn": arn, "MetricStat": "Last", "Period": "IterationNumber",
                    "XAxisType": "IterationNumber"})
    results = client.batch_get_metrics(MetricQueries=queries)["MetricQueryResults"]
    assert [r["XAxisValues"] for r in results[:3]] == [[0, 1, 2]] * 3
    assert [r["MetricValues"] for r in results[:3]] == [[1.0, 3.0, 5.0], [0.5, 2.5, 4.5], [2.0, 2.0, 2.0]]
    assert results[3]["MetricValues"] == [5.0] and results[3]["XAxisValues"] == [1_700_000_000 // 60 * 60]
    assert results[4] == {"Status": "Complete", "XAxisValues": [], "MetricValues": []}
    assert metrics_fake.reads == 1 and metrics_fake.violations == []
    try:
        client.batch_get_metrics(MetricQueries=[{**queries[0], "ResourceArn": "not-an-arn"}])
    except client.exceptions.ClientError as exc:
        assert exc.response["Error"]["Code"] == "ValidationException"
    else:
        raise AssertionError("a bad ARN was taken")
