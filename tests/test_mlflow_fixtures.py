"""The MLflow test infrastructure itself: a real tracking server, and the SigV4 proxy in front of it."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials
from mlflow.tracking import MlflowClient

from mlflow_server import MlflowServer
from sigv4_proxy import ARN_HEADER, SigV4Proxy

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/sagerun-tests"
GET_DEFAULT = "/api/2.0/mlflow/experiments/get-by-name?experiment_name=Default"
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _send(method: str, url: str, headers: dict[str, str], body: bytes | None = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with _NO_PROXY.open(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _signed(method: str, url: str, body: bytes | None = None, *, secret: str = "testing",
            arn: str | None = ARN, service: str = "sagemaker-mlflow") -> dict[str, str]:
    """Headers as a correct client computes them, with botocore (the conftest's fake credentials)."""
    headers = {ARN_HEADER: arn} if arn else {}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(ReadOnlyCredentials("testing", secret, "testing"), service, "us-east-1").add_auth(request)
    return dict(request.headers.items())


def _create_run(client: MlflowClient) -> str:
    experiment_id = client.create_experiment(f"fixtures-{uuid.uuid4().hex}")
    run = client.create_run(experiment_id, run_name="infra")
    client.log_param(run.info.run_id, "lr", "0.01")
    client.log_metric(run.info.run_id, "loss", 0.5, step=3)
    return run.info.run_id


def test_mlflow_client_creates_and_reads_back_a_run(mlflow_server: MlflowServer) -> None:
    client = MlflowClient(tracking_uri=mlflow_server.url)
    run = client.get_run(_create_run(client))
    assert run.data.params == {"lr": "0.01"}
    assert run.data.metrics == {"loss": 0.5}
    assert [(m.value, m.step) for m in client.get_metric_history(run.info.run_id, "loss")] == [(0.5, 3)]


def test_a_crashed_server_restarted_keeps_its_runs(mlflow_server: MlflowServer) -> None:
    client = MlflowClient(tracking_uri=mlflow_server.url)
    run_id = _create_run(client)
    mlflow_server.kill()
    assert not mlflow_server.running
    mlflow_server.restart()
    run = client.get_run(run_id)
    assert run.data.params == {"lr": "0.01"}
    assert run.data.metrics == {"loss": 0.5}


def test_proxy_refuses_an_unsigned_request(sigv4_proxy: SigV4Proxy) -> None:
    status, body = _send("GET", sigv4_proxy.url + GET_DEFAULT, {ARN_HEADER: ARN})
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert "Authorization" in body["message"]
    assert (sigv4_proxy.accepted, sigv4_proxy.refused) == (0, 1)


def test_proxy_refuses_a_request_without_the_arn_header(sigv4_proxy: SigV4Proxy) -> None:
    url = sigv4_proxy.url + GET_DEFAULT
    status, body = _send("GET", url, _signed("GET", url, arn=None))
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert ARN_HEADER in body["message"]


def test_proxy_forwards_a_signed_request(sigv4_proxy: SigV4Proxy) -> None:
    url = sigv4_proxy.url + GET_DEFAULT
    status, body = _send("GET", url, _signed("GET", url))
    assert status == 200
    assert body["experiment"]["name"] == "Default"
    assert (sigv4_proxy.accepted, sigv4_proxy.refused) == (1, 0)


def test_proxy_forwards_mlflow_errors_and_strictly_encoded_queries(sigv4_proxy: SigV4Proxy) -> None:
    url = sigv4_proxy.url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=no%20such%2Bexperiment"
    status, body = _send("GET", url, _signed("GET", url))
    assert (status, body["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert "no such+experiment" in body["message"]


def test_proxy_forwards_a_signed_post(sigv4_proxy: SigV4Proxy, mlflow_server: MlflowServer) -> None:
    url = sigv4_proxy.url + "/api/2.0/mlflow/experiments/create"
    name = f"via-proxy-{uuid.uuid4().hex}"
    payload = json.dumps({"name": name}).encode()
    status, body = _send("POST", url, _signed("POST", url, payload), payload)
    assert status == 200
    assert MlflowClient(tracking_uri=mlflow_server.url).get_experiment(body["experiment_id"]).name == name


def test_proxy_refuses_a_wrong_secret(sigv4_proxy: SigV4Proxy) -> None:
    url = sigv4_proxy.url + GET_DEFAULT
    status, body = _send("GET", url, _signed("GET", url, secret="not-the-secret"))
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert "signature does not match" in body["message"]
    assert (sigv4_proxy.accepted, sigv4_proxy.refused) == (0, 1)


def test_proxy_refuses_a_body_other_than_the_signed_one(sigv4_proxy: SigV4Proxy) -> None:
    url = sigv4_proxy.url + "/api/2.0/mlflow/experiments/create"
    headers = _signed("POST", url, b'{"name": "signed"}')
    status, body = _send("POST", url, headers, b'{"name": "tampered"}')
    assert (status, body["error_code"]) == (403, "PERMISSION_DENIED")
    assert sigv4_proxy.accepted == 0


def test_proxy_refuses_another_service_scope(sigv4_proxy: SigV4Proxy) -> None:
    url = sigv4_proxy.url + GET_DEFAULT
    status, body = _send("GET", url, _signed("GET", url, service="sagemaker"))
    assert status == 403
    assert "sagemaker-mlflow" in body["message"]


def test_proxy_explains_a_query_signed_as_sent_but_not_canonically(sigv4_proxy: SigV4Proxy) -> None:
    # Form encoding ("+" for a space) is what MLflow reads as a space, but AWS signs "%20".
    url = sigv4_proxy.url + "/api/2.0/mlflow/experiments/get-by-name?experiment_name=no+such"
    status, body = _send("GET", url, _signed("GET", url))
    assert status == 403
    assert "%20" in body["message"]
