"""Fixtures: a moto server for the SageMaker control calls and S3, all on 127.0.0.1.

Everything AWS-facing is pointed at loopback with fake credentials before anything imports boto, and
instance-metadata look-ups are switched off so that no test can reach another address.
"""

from __future__ import annotations

import logging
import os
import tempfile
import urllib.request
from typing import Any, Iterator

import pytest

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/sagerun-tests",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/sagerun-tests",
}
os.environ.update(_FAKE_ENV)
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER", "AWS_ENDPOINT_URL_SAGEMAKER_METRICS",
              "AWS_ENDPOINT_URL_S3", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
    os.environ.pop(_name, None)
for _name in [n for n in os.environ if n.startswith("SAGERUN_")]:
    os.environ.pop(_name)
# The spool and local store of runs that name no store go here, never into the checkout.
os.environ["SAGERUN_HOME"] = tempfile.mkdtemp(prefix="sagerun-tests-")

import boto3  # noqa: E402
import botocore.config  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

import sagerun  # noqa: E402
from metrics_fake import MetricsFake  # noqa: E402


logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log drowns the report


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(autouse=True)
def _reset_moto(request: pytest.FixtureRequest) -> None:
    if "moto_url" in request.fixturenames:
        url = request.getfixturevalue("moto_url")
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()


@pytest.fixture(scope="session")
def _metrics_fake_server() -> Iterator[MetricsFake]:
    fake = MetricsFake()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def metrics_fake(_metrics_fake_server: MetricsFake) -> MetricsFake:
    """The recording fake of the metrics endpoint, emptied and with no faults."""
    _metrics_fake_server.reset()
    return _metrics_fake_server


@pytest.fixture
def sagemaker(moto_url: str) -> Any:
    """A plain boto3 client on the moto server: what a user (or the console) would see."""
    return boto3.client("sagemaker", endpoint_url=moto_url, region_name="us-east-1",
                        config=botocore.config.Config(retries={"max_attempts": 1}))


@pytest.fixture
def session(moto_url: str, metrics_fake: MetricsFake) -> sagerun.Session:
    """Control calls to moto, metrics to the recording fake; short retries to keep tests quick."""
    return sagerun.Session(
        region="us-east-1", endpoint_url=moto_url, metrics_endpoint_url=metrics_fake.url,
        retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=5.0, close_timeout=10.0, linger=0.005,
    )


from mlflow_server import QUIET_ENV, MlflowServer  # noqa: E402
from sigv4_proxy import SigV4Proxy  # noqa: E402

os.environ.update(QUIET_ENV)  # MlflowClient in this process would otherwise send telemetry out


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server (sqlite, proxied artifacts); started once: it takes seconds."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow")) as server:
        yield server


@pytest.fixture
def sigv4_proxy(mlflow_server: MlflowServer) -> Iterator[SigV4Proxy]:
    """SageMaker's managed MLflow endpoint as a client sees it: SigV4 and the ARN header, then MLflow."""
    with SigV4Proxy(mlflow_server.url, _FAKE_ENV["AWS_ACCESS_KEY_ID"], _FAKE_ENV["AWS_SECRET_ACCESS_KEY"],
                    region=_FAKE_ENV["AWS_DEFAULT_REGION"], token=_FAKE_ENV["AWS_SESSION_TOKEN"]) as proxy:
        yield proxy


# -- the tree a test run leaves ---------------------------------------------------------------------

_CHECKOUT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _porcelain() -> set[str] | None:
    """``git status --porcelain`` of the checkout, or ``None`` outside a git checkout."""
    import subprocess

    try:
        done = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=_CHECKOUT,
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return set(done.stdout.splitlines()) if done.returncode == 0 else None


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = _porcelain()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """A test run must leave the checkout as it found it: every store, server database and result
    file goes to a temporary folder (git ignores caches and venvs)."""
    before = session.config.stash.get(_BEFORE, None)
    after = _porcelain()
    if before is None or after is None:
        return
    left = sorted(after - before)
    if left:
        session.config.get_terminal_writer().line(
            "the tests left files in the checkout (give them a temporary folder): " + ", ".join(left), red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_BEFORE = pytest.StashKey[set[str] | None]()
