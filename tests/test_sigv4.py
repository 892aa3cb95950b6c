"""sagerun's SigV4 signer for the metrics request yields exactly the Authorization botocore computes."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from sagerun.backends.sigv4 import Signer, canonical_query


@pytest.mark.parametrize("token", [None, "session-token/with+chars="])
@pytest.mark.parametrize("host", ["metrics.sagemaker.eu-west-1.amazonaws.com", "127.0.0.1:8443"])
def test_signature_matches_botocore(token, host):
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    body = b'{"TrialComponentName":"exp-run","MetricData":[{"MetricName":"loss","Timestamp":1.5,"Value":0.25}]}'
    when = datetime.datetime(2026, 11, 25, 23, 59, 58)
    request = AWSRequest(method="PUT", url=f"https://{host}/BatchPutMetrics", data=body,
                         headers={"Content-Type": "application/json"})
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(credentials, "sagemaker", "eu-west-1").add_auth(request)
    ours = Signer(host, "sagemaker", "eu-west-1").headers(
        "PUT", "/BatchPutMetrics", body, credentials, now=when.replace(tzinfo=datetime.timezone.utc).timestamp())
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")


@pytest.mark.parametrize("method, query, body", [
    ("GET", {"experiment_name": "my exp+1/ä", "max_results": "10"}, b""),
    ("POST", {}, b'{"experiment_id":"1","run_name":"r"}'),
])
def test_signature_of_a_tracking_server_request_matches_botocore(method, query, body):
    # The MLflow REST calls to a SageMaker tracking server: GET with a query, POST with a body,
    # and the server's ARN in a header of its own, which is signed too.
    credentials = ReadOnlyCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "token")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/my-server"
    host, path = "us-east-1.experiments.sagemaker.aws", "/api/2.0/mlflow/experiments/get-by-name"
    when = datetime.datetime(2026, 12, 7, 1, 2, 3)
    encoded = canonical_query(query)
    headers = {"x-mlflow-sm-tracking-server-arn": arn}
    if body:
        headers["Content-Type"] = "application/json"
    request = AWSRequest(method=method, url=f"https://{host}{path}" + (f"?{encoded}" if encoded else ""),
                         data=body or None, headers=headers)
    with mock.patch("botocore.auth.get_current_datetime", return_value=when):
        SigV4Auth(credentials, "sagemaker-mlflow", "us-east-1").add_auth(request)
    ours = Signer(host, "sagemaker-mlflow", "us-east-1").headers(
        method, path, body, credentials, query=encoded, extra={"x-mlflow-sm-tracking-server-arn": arn},
        now=when.replace(tzinfo=datetime.timezone.utc).timestamp())
    assert ours["authorization"] == request.headers["Authorization"]
