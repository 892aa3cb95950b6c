"""Backends · a run's model in SageMaker's Model Registry: a version in a model package group.

The group is described first and created only when missing (moto, unlike SageMaker, replaces a
group that CreateModelPackageGroup names again). The version names its run twice: in its
customer metadata (``sagerun:trial-component``, ``sagerun:experiment``), which every API returns,
and in ``MetadataProperties.GeneratedBy`` (the trial component's ARN). A lineage association
(the run ``Produced`` the model package) is added where the API allows; it is best effort, as
charts' lineage is (moto answers AddAssociation with HTTP 500).

Without ``image_uri`` the version has no inference specification: it records the model and its
run, and is given a container (UpdateModelPackage) before it can be deployed.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import botocore.exceptions

from .._model.records import RunRecord
from .._model.registry import EXPERIMENT_KEY, MODEL_DATA_KEY, RUN_KEY, ModelRequest, ModelVersion
from .aws import short_error

logger = logging.getLogger("sagerun")

Call = Callable[..., Awaitable[Any]]
_ASSOCIATION_DEADLINE = 10.0


async def register(call: Call, sagemaker: Any, record: RunRecord, run_arn: str, request: ModelRequest,
                   model_data: str, not_found: Callable[[botocore.exceptions.ClientError], bool]) -> ModelVersion:
    """Create the version (and its group when missing) of ``request`` whose files are ``model_data``.

    Raises:
        botocore.exceptions.ClientError: a call failed for good (the caller says what to do).
    """
    try:
        await call(sagemaker.describe_model_package_group, ModelPackageGroupName=request.group)
    except botocore.exceptions.ClientError as exc:
        if not not_found(exc):
            raise
        created: dict[str, Any] = {"ModelPackageGroupName": request.group}
        if request.tags:
            created["Tags"] = request.tags
        await call(sagemaker.create_model_package_group, **created)
    package: dict[str, Any] = {
        "ModelPackageGroupName": request.group,
        "ModelApprovalStatus": request.approval_status,
        "CustomerMetadataProperties": {RUN_KEY: record.trial_component_name, EXPERIMENT_KEY: record.experiment_name},
    }
    if run_arn:
        package["MetadataProperties"] = {"GeneratedBy": run_arn}
    if request.description:
        package["ModelPackageDescription"] = request.description
    if request.image_uri:
        package["InferenceSpecification"] = {"Containers": [{"Image": request.image_uri, "ModelDataUrl": model_data}]}
    else:
        package["CustomerMetadataProperties"][MODEL_DATA_KEY] = model_data
    if request.tags:
        package["Tags"] = request.tags
    arn = str((await call(sagemaker.create_model_package, **package))["ModelPackageArn"])
    described = await call(sagemaker.describe_model_package, ModelPackageName=arn)
    if run_arn:
        await _associate(call, sagemaker, run_arn, arn)
    return ModelVersion(request.group, int(described.get("ModelPackageVersion") or 0), arn, model_data,
                        request.approval_status, record.trial_component_name)


async def _associate(call: Call, sagemaker: Any, run_arn: str, package_arn: str) -> None:
    try:
        await call(sagemaker.add_association, SourceArn=run_arn, DestinationArn=package_arn,
                   AssociationType="Produced", transient_only_if_throttled=True,
                   deadline=_ASSOCIATION_DEADLINE)
    except Exception as exc:  # the customer metadata already links the two
        logger.info("sagerun: no lineage association from %s to %s (its customer metadata names the run): %s",
                    run_arn, package_arn, short_error(exc))
