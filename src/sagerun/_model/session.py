"""Model · configuration of sagerun, read once: a frozen ``Session``."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from typing import Any, Literal, get_args

FullPolicy = Literal["spill", "block", "drop_oldest", "drop_newest", "raise"]
BackendName = Literal["sagemaker", "local", "mlflow"]
MetricsClient = Literal["http", "botocore"]
SenderMode = Literal["process", "inline"]

_POLICIES: tuple[str, ...] = get_args(FullPolicy)


@dataclasses.dataclass(frozen=True)
class Session:
    """How sagerun reaches SageMaker and how its ingestion engine behaves.

    Endpoint URLs left as ``None`` follow the AWS conventions that botocore applies itself:
    ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_SAGEMAKER``, ``AWS_ENDPOINT_URL_SAGEMAKER_METRICS`` and
    ``AWS_ENDPOINT_URL_S3``; credentials and region come from the standard chain unless given.

    Raises:
        ValueError: a setting is out of range (the message names it).
    """

    backend: BackendName | None = None
    """``"sagemaker"``, ``"local"`` (the embedded store), ``"mlflow"`` (an MLflow tracking server,
    ``tracking_uri``), or ``None``: ``SAGERUN_BACKEND``, else MLflow when ``tracking_uri`` is given,
    else SageMaker when AWS credentials are found, else the local store (said once in the log)."""
    tracking_uri: str | None = None
    """The MLflow tracking server of the ``"mlflow"`` backend: an ``http(s)://`` URL, or the ARN of
    a SageMaker managed MLflow tracking server or app (``arn:aws:sagemaker:…:mlflow-tracking-server/…``);
    ``MLFLOW_TRACKING_URI`` when ``None``."""
    store: str | None = None
    """Folder of the local store and spool: ``SAGERUN_HOME``, else ``./sagerun``."""
    region: str | None = None
    """AWS region; the standard chain (``AWS_DEFAULT_REGION``, ``~/.aws/config``) when ``None``."""
    endpoint_url: str | None = None
    """One endpoint for every AWS service (a test server, a proxy); per-service ones below win."""
    sagemaker_endpoint_url: str | None = None
    """Endpoint of the SageMaker control API (experiments, trials, trial components, jobs)."""
    metrics_endpoint_url: str | None = None
    """Endpoint of the SageMaker Metrics API (BatchPutMetrics)."""
    s3_endpoint_url: str | None = None
    """Endpoint of S3, where files, charts and tables go."""
    boto_session: Any = None
    """An ``aioboto3.Session`` to take credentials and region from; a new one when ``None``."""

    artifact_sse: str | None = None
    """Server-side encryption of uploaded files: ``"AES256"`` (SSE-S3) or ``"aws:kms"`` (SSE-KMS)."""
    artifact_kms_key_id: str | None = None
    """The KMS key for ``artifact_sse="aws:kms"``; the account's default key when ``None``."""
    artifact_bucket_owner: str | None = None
    """Account id the artifact bucket must belong to (S3's expected-bucket-owner check)."""
    metrics_client: MetricsClient = "http"
    """How BatchPutMetrics is sent: ``"http"``, a lean orjson + SigV4 + aiohttp path (about three
    times less CPU a request), or ``"botocore"``, the aioboto3 client (whole-second timestamps)."""
    sender: SenderMode = "process"
    """Where metrics requests are sent from: ``"process"``, a sender process per run (points reach
    it in bulk over a socket), so that the CPU and the GIL that sending takes stay out of the
    training process; ``"inline"``, the run's own event loop. The process is used for SageMaker
    runs with the ``http`` metrics client and for MLflow runs that are not ``durable``, on POSIX;
    others send inline."""
    capture_console: bool = False
    """Tee the script's ``sys.stdout``, ``sys.stderr`` and sagerun's log into a file while a run is
    open, stored at close as its output artifact ``logs`` (``SAGERUN_CAPTURE_CONSOLE=1``). Writes
    reach the file from a thread of their own, not from the caller."""
    system_metrics: bool = False
    """Sample CPU, memory, disk and network use, the training process tree's RSS and CPU, and each
    NVIDIA GPU's utilisation, memory, power and temperature (with nvidia-ml-py) every
    ``system_metrics_interval`` seconds, as metrics of the run named ``system/…``
    (``SAGERUN_SYSTEM_METRICS=1``). They are read where metrics are sent from: the sender process,
    or a worker thread of the run's event loop. Needs psutil: ``pip install 'sagerun[system]'``."""
    system_metrics_interval: float = 10.0
    """Seconds between two samples of the system metrics."""
    durable: bool = False
    """Write every point to the local store's spool before sending it, and remove it once delivered,
    so that after a crash or ``kill -9`` ``sagerun sync`` delivers what was logged up to the last
    ``linger`` interval. Costs one SQLite write per ~2,000 points on the drain, not on the caller."""
    queue_capacity: int = 100_000
    """Points the queue holds before ``full_policy`` applies."""
    full_policy: FullPolicy = "spill"
    """What happens when the points waiting to be sent fill the queue. ``"spill"``: the drain writes
    the oldest of them to the local store's spool, off the training thread, and sends them from
    there, oldest first, as the endpoint takes them; ``log_metric`` waits only if the disk cannot
    keep up (for the local backend, and in ``durable`` mode, where points are on disk already, it
    waits as ``"block"`` does). ``"block"``: wait for room. ``"drop_oldest"``, ``"drop_newest"``:
    drop a point, counted and reported at close. ``"raise"``: raise ``QueueFullError``."""
    initial_in_flight: int = 8
    """Metrics requests in flight at the start; one more per round of successes.
    Throttling slows the send rate, not this (see docs/concepts.md)."""
    max_in_flight: int = 64
    """Most metrics requests in flight (also the size of the connection pool)."""
    linger: float = 0.02
    """Seconds the drain waits for a batch to fill before it sends a partial one."""
    retry_initial: float = 0.05
    """Largest wait in seconds before the first retry; it doubles with each retry (full jitter:
    each wait is drawn uniformly between 0 and that bound)."""
    retry_max_backoff: float = 10.0
    """The bound on a single wait between retries, in seconds."""
    retry_deadline: float = 60.0
    """Seconds after which a failing request is given up: its points go to the dead-letter hook."""
    request_timeout: float = 10.0
    """Seconds before a single request is abandoned and retried."""
    close_timeout: float = 30.0
    """Seconds closing a run may spend flushing; what is left then is reported as undelivered."""
    lag_warning: float = 30.0
    """A warning is logged (at most once a minute) when the oldest undelivered point is older."""

    def __post_init__(self) -> None:
        if self.backend not in (None, *get_args(BackendName)):
            raise ValueError(f"backend must be 'sagemaker', 'local', 'mlflow' or None; got {self.backend!r}")
        if self.tracking_uri is not None and not self.tracking_uri.startswith(("http://", "https://", "arn:")):
            raise ValueError(f"tracking_uri must be an http(s):// URL or the ARN of a SageMaker MLflow tracking server "
                             f"or app; got {self.tracking_uri!r} (file and database URIs need MLflow's own client)")
        if self.metrics_client not in ("http", "botocore"):
            raise ValueError(f"metrics_client must be 'http' or 'botocore'; got {self.metrics_client!r}")
        if self.sender not in ("process", "inline"):
            raise ValueError(f"sender must be 'process' or 'inline'; got {self.sender!r}")
        if self.full_policy not in _POLICIES:
            raise ValueError(f"full_policy must be one of {', '.join(_POLICIES)}; got {self.full_policy!r}")
        if self.system_metrics and importlib.util.find_spec("psutil") is None:
            raise RuntimeError("system_metrics=True needs psutil: pip install 'sagerun[system]'")
        if not isinstance(self.system_metrics_interval, (int, float)) or self.system_metrics_interval < 0.1:
            raise ValueError(f"system_metrics_interval must be a number of seconds >= 0.1; "
                             f"got {self.system_metrics_interval!r}")
        for name in ("queue_capacity", "initial_in_flight", "max_in_flight"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        # Setting only max_in_flight=4 should just work: the start is kept within the bounds.
        initial = min(self.initial_in_flight, self.max_in_flight)
        object.__setattr__(self, "initial_in_flight", initial)
        for name in ("linger", "retry_initial", "retry_max_backoff", "retry_deadline", "request_timeout",
                     "close_timeout", "lag_warning"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of seconds >= 0; got {value!r}")

    @property
    def store_path(self) -> str:
        return self.store or os.environ.get("SAGERUN_HOME") or os.path.join(os.getcwd(), "sagerun")

    def endpoint_for(self, service: str) -> str | None:
        """The explicit endpoint for ``service`` or ``None`` to let botocore resolve it."""
        specific = {
            "sagemaker": self.sagemaker_endpoint_url,
            "sagemaker-metrics": self.metrics_endpoint_url,
            "s3": self.s3_endpoint_url,
        }.get(service)
        return specific or self.endpoint_url

    @classmethod
    def from_env(cls, **overrides: Any) -> Session:
        """A session from ``SAGERUN_*`` environment variables, then ``overrides``."""
        settings: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(f"SAGERUN_{field.name.upper()}")
            if raw is None or field.name == "boto_session":
                continue
            kind = type(field.default)
            if kind is bool:
                settings[field.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                settings[field.name] = raw if field.default is None or kind is str else kind(raw)
        settings.update(overrides)
        return cls(**settings)
