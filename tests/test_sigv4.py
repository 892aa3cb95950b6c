"""sagerun's SigV4 signer for the metrics request yields exactly the Authorization botocore computes."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

from sagerun.backends.sigv4 import JsonPutSigner


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
    ours = JsonPutSigner(host, "/BatchPutMetrics", "sagemaker", "eu-west-1").headers(
        body, credentials, now=when.replace(tzinfo=datetime.timezone.utc).timestamp())
    assert ours["authorization"] == request.headers["Authorization"]
    assert ours["x-amz-date"] == request.headers["X-Amz-Date"]
    assert ours.get("x-amz-security-token") == request.headers.get("X-Amz-Security-Token")
