"""Artifacts · ``run.register_model``: the model's files stored with the run, then a version in
the backend's registry (SageMaker's Model Registry, MLflow's, the local store's ``models``).

A local file is stored as ``log_file`` stores files; a folder first becomes ``<group>.tar.gz``, the
one-file form SageMaker's containers load (``ModelDataUrl``); an ``s3://`` URI is recorded as it
is. Either way the run gains the output artifact ``model:<group>``, whose value is where the
files are, so that the run shows what it registered.
"""

from __future__ import annotations

from .._model.registry import ModelRequest, ModelVersion
from .state import RunArtifacts, RunParts


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
    else:  # a folder becomes <group>.tar.gz
        uri = await artifacts.log_file(parts, data, name, None, True, archive_name=request.group)
    return await parts.backend.register_model(parts.record, request, uri)

