"""Model · a model registered from a run (``run.register_model``): the request, checked at the
call against SageMaker's rules on every backend, and the version the registry answers with.

The rules are the Model Registry's, so that a model registered in the local store or MLflow
names a group SageMaker would take: a group name of 1 to 63 letters, digits and hyphens, not
starting or ending with a hyphen; an approval status of ``Approved``, ``Rejected`` or
``PendingManualApproval``; a description of at most 1,024 characters.
"""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from .tags import Tags, check_tags

APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_MAX_DESCRIPTION = 1024
_MAX_IMAGE = 255
#: customer metadata keys on a SageMaker model package, and model version tags on MLflow
RUN_KEY = "sagerun:trial-component"
EXPERIMENT_KEY = "sagerun:experiment"
#: where the files are, on a SageMaker model package without an inference specification to hold it
MODEL_DATA_KEY = "sagerun:model-data"


class ModelRequest(NamedTuple):
    """What ``register_model`` was asked, checked; ``model_data`` is a ``s3://`` URI or a local
    path that exists (made absolute)."""

    group: str
    model_data: str
    description: str | None
    image_uri: str | None
    approval_status: str
    tags: Tags


class ModelVersion(NamedTuple):
    """A version of a model in a registry, as ``register_model`` returns it.

    ``id`` is the registry's own name for it: the model package ARN on SageMaker,
    ``models:/<group>/<version>`` on MLflow and in the local store. ``model_data`` is where the
    model's files are: the URI given, or where the local file or folder was stored.
    """

    group: str
    version: int
    id: str
    model_data: str
    approval_status: str
    run: str


def check_group(group: object, argument: str = "model_package_group") -> str:
    """``group`` if it is a name SageMaker takes for a model package group.

    Raises:
        TypeError, ValueError: it is not a str, or not 1 to 63 letters, digits and hyphens (named ``argument``).
    """
    if not isinstance(group, str):
        raise TypeError(f"{argument} must be a str; got {type(group).__name__}")
    if not _GROUP.match(group):
        raise ValueError(f"{argument} must be 1 to 63 letters, digits and hyphens, starting and ending "
                         f"with a letter or digit (SageMaker's rule); got {group!r}")
    return group


def check_model_request(group: object, model_data: object, description: object = None, image_uri: object = None,
                        approval_status: object = "PendingManualApproval", tags: object = None) -> ModelRequest:
    """The request of ``register_model``, checked.

    Raises:
        TypeError: an argument of the wrong type (the message names it).
        ValueError: ``model_package_group`` breaks the naming rule, ``model_data`` is neither an
            ``s3://`` URI nor an existing file or folder, ``approval_status`` is not one of
            ``APPROVAL_STATUSES``, ``description`` or ``image_uri`` is too long, or a tag is bad.
    """
    group = check_group(group)
    if not isinstance(model_data, (str, os.PathLike)):
        raise TypeError(f"model_data must be an s3:// URI or the path of a file or folder; "
                        f"got {type(model_data).__name__}")
    data = os.fspath(model_data)
    if data.startswith("s3://"):
        if not data[len("s3://"):].partition("/")[0]:
            raise ValueError(f"model_data {data!r} names no bucket: give s3://bucket/key")
    elif not os.path.exists(data):
        raise ValueError(f"model_data {data!r} is neither an s3:// URI nor an existing file or folder")
    else:
        data = os.path.abspath(data)
    for argument, value, limit in (("description", description, _MAX_DESCRIPTION), ("image_uri", image_uri,
                                                                                    _MAX_IMAGE)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"{argument} must be a str or None; got {type(value).__name__}")
        if value is not None and len(value) > limit:
            raise ValueError(f"{argument} must be at most {limit} characters; got {len(value)}")
    if approval_status not in APPROVAL_STATUSES:
        raise ValueError(f"approval_status must be one of {', '.join(APPROVAL_STATUSES)}; got {approval_status!r}")
    checked: Tags = check_tags(tags) if tags is not None else []
    return ModelRequest(group, data, description, image_uri, str(approval_status), checked)

