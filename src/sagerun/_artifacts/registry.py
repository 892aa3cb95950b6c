"""Artifacts · ``run.register_model``: the model's files stored with the run, then a version in
the backend's registry (SageMaker's Model Registry, MLflow's, the local store's ``models``).

A local file is stored as ``log_file`` stores files; a folder first becomes ``<group>.tar.gz``, the
one-file form SageMaker's containers load (``ModelDataUrl``); an ``s3://`` URI is recorded as it
is. Either way the run gains the output artifact ``model:<group>``, whose value is where the
files are, so that the run shows what it registered.
"""

from __future__ import annotations

import os
import shutil
import tarfile
import tempfile

import anyio.to_thread

from .._model.registry import ModelRequest, ModelVersion
from .state import RunArtifacts, RunParts

GZIP = "application/gzip"


async def register_model(artifacts: RunArtifacts, parts: RunParts, request: ModelRequest) -> ModelVersion:
    """Store the files of ``request`` (unless they are in S3), then register them.

    Raises:
        ValueError: no output artifact slot is left for ``model:<group>``.
        BackendError: the files could not be stored, or the registry refused the version.
    """
    name = f"model:{request.group}"
    data = request.model_data
    if data.startswith("s3://"):
        artifacts.log_artifact(parts.record, name, data, None, True)
        uri = data
    elif os.path.isdir(data):
        folder = await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="sagerun-model-"))
        try:
            archive = os.path.join(folder, f"{request.group}.tar.gz")
            await anyio.to_thread.run_sync(_archive, data, archive)
            uri = await artifacts.log_file(parts, archive, name, GZIP, True)
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, folder, True)
    else:
        uri = await artifacts.log_file(parts, data, name, None, True)
    return await parts.backend.register_model(parts.record, request, uri)


def _archive(folder: str, path: str) -> None:
    # The folder's content at the archive's top, as SageMaker unpacks model.tar.gz into /opt/ml/model.
    with tarfile.open(path, "w:gz") as archive:
        for entry in sorted(os.listdir(folder)):
            archive.add(os.path.join(folder, entry), arcname=entry)
