"""Backends · where runs and their points are kept: SageMaker, an MLflow tracking server, or the local store."""

from __future__ import annotations

import logging
import os

from .._model.session import Session
from .base import Backend

logger = logging.getLogger("sagerun")
_announced = False


def backend_name(session: Session) -> str:
    """The backend ``session`` asks for; with none configured, SageMaker if AWS is set up, else local."""
    global _announced
    name = session.backend or os.environ.get("SAGERUN_BACKEND") or None
    if name is not None:
        if name not in ("sagemaker", "local", "mlflow"):
            raise ValueError(f"SAGERUN_BACKEND must be 'sagemaker', 'local' or 'mlflow'; got {name!r}")
        return name
    if session.tracking_uri:
        return "mlflow"
    configured = session.boto_session is not None or any(
        (session.endpoint_url, session.sagemaker_endpoint_url, session.metrics_endpoint_url, session.region)
    ) or any(v.startswith("AWS_ENDPOINT_URL") for v in os.environ)
    if configured or _has_credentials():
        return "sagemaker"
    if not _announced:
        _announced = True
        logger.warning("sagerun: no AWS credentials found, logging to the local store in %s "
                       "(set SAGERUN_BACKEND=sagemaker to insist on SageMaker)", session.store_path)
    return "local"


def _has_credentials() -> bool:
    import botocore.session

    return botocore.session.get_session().get_credentials() is not None


def make_backend(session: Session) -> Backend:
    """A new, not yet entered backend for one run."""
    name = backend_name(session)
    if name == "local":
        from .local import LocalBackend

        return LocalBackend(session)
    if name == "mlflow":
        from .mlflow import MlflowBackend

        return MlflowBackend(session)
    from .sagemaker import SageMakerBackend

    return SageMakerBackend(session)
