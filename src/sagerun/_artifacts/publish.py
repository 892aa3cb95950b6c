"""Artifacts · A local run's artifact files to S3, for ``sagerun sync`` when it pushes the run to SageMaker.

The local store records files, charts and tables as ``file://`` URIs of its own folder. Before such
a run is saved in SageMaker, each of those files is uploaded exactly as ``log_file`` would have
(``s3://<bucket>/<prefix>/<trial component>/<file name>``), the record sent to SageMaker gets the
S3 URIs, and charts and tables get their lineage artifacts. The local store keeps its ``file://``
values and files: pushing again uploads the same keys again, which is harmless.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re

from .._model.session import Session
from .._model.records import Artifact, RunRecord
from . import charts, tables
from .clients import AwsClients
from .documents import local_file
from .lineage import Lineage
from .s3 import S3Options, S3Storage
from .storage import LOCAL_FOLDER

logger = logging.getLogger("sagerun")
_TYPE = re.compile(rb'\{\s*"type"\s*:\s*"(\w+)"')
_LINKED = (*charts.CHART_TYPES, tables.TABLE)


async def publish_local_artifacts(session: Session, record: RunRecord, store_path: str, *,
                                  bucket: str | None = None, prefix: str | None = None,
                                  options: S3Options | None = None) -> RunRecord:
    """A copy of ``record`` whose artifacts kept in the local store's folder are uploaded to S3 and
    named by their S3 URIs; other values (S3 URIs, text) are kept as they are.

    Raises:
        BackendError: a file could not be uploaded (those before it stay uploaded).
    """
    folder = os.path.realpath(os.path.join(store_path, LOCAL_FOLDER))
    clients = AwsClients(session, max_connections=(options or S3Options()).max_concurrency)
    try:
        storage = S3Storage(clients, record.trial_component_name, bucket=bucket, prefix=prefix, options=options)
        lineage = Lineage(clients, record.trial_component_name)
        published = dataclasses.replace(record, input_artifacts=dict(record.input_artifacts),
                                        output_artifacts=dict(record.output_artifacts))
        for is_output, group in ((False, published.input_artifacts), (True, published.output_artifacts)):
            for name, artifact in group.items():
                path = local_file(artifact.value, store_path, record.trial_component_name)
                if path is None or not os.path.realpath(path).startswith(folder + os.sep) or not os.path.isfile(path):
                    continue  # not a file of this store: a value the user logged, kept as it is
                stored = await storage.put_file(path, os.path.basename(path), artifact.media_type)
                group[name] = Artifact(stored.uri, artifact.media_type)
                kind = _document_type(path) if artifact.media_type == charts.MEDIA_TYPE else None
                if kind in _LINKED:
                    await lineage.link(name, kind, stored, is_output=is_output)
                logger.info("sagerun: uploaded %s of %s to %s", name, record.trial_component_name, stored.uri)
        return published
    finally:
        await clients.aclose()


def _document_type(path: str) -> str | None:
    try:
        with open(path, "rb") as file:
            match = _TYPE.match(file.read(256))
    except OSError:
        return None
    return match.group(1).decode() if match else None
