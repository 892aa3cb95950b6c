"""Backends · the runs of a SageMaker experiment, listed: every trial of it (its default run group,
and a pipeline's executions) searched for the trial components that carry the Run tag.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Any, Callable

import botocore.exceptions

from .._model.errors import BackendError, TransportError
from .._model.naming import PARENT_TAG, RUN_TAG, run_group_name
from .._model.records import Artifact, RunRecord
from .._model.tags import as_dict, as_list

from .aws import not_found

if TYPE_CHECKING:
    from .sagemaker import SageMakerBackend

logger = logging.getLogger("sagerun")


async def list_runs(backend: SageMakerBackend, experiment_name: str, *, created_after: datetime.datetime | None = None,
                    created_before: datetime.datetime | None = None, sort_by: str = "CreationTime",
                    sort_order: str = "Descending", max_results: int | None = None,
                    where: Callable[[RunRecord], bool] | None = None) -> list[RunRecord]:
    """The runs of ``experiment_name`` as ``Backend.list_runs`` says: every run group's trial
    components that carry the Run tag, through Search.

    Raises:
        BackendError: the trials or the runs could not be listed.
    """
    after, before = aware(created_after), aware(created_before)
    # Runs are the run groups' trial components that carry the Run tag: one Search a page, with
    # parameters and status included, instead of a List plus a look-up per trial component.
    filters: list[dict[str, str]] = [
        {"Name": "Parents.TrialName", "Operator": "Equals", "Value": run_group_name(experiment_name)},
        {"Name": f"Tags.{RUN_TAG['Key']}", "Operator": "Equals", "Value": RUN_TAG["Value"]},
    ]

    # The API compares timestamps given as text without a zone: widen by a day, filter exactly below.
    if after is not None:
        filters.append({"Name": "CreationTime", "Operator": "GreaterThanOrEqualTo",
                        "Value": _search_time(after - datetime.timedelta(days=1))})
    if before is not None:
        filters.append({"Name": "CreationTime", "Operator": "LessThanOrEqualTo",
                        "Value": _search_time(before + datetime.timedelta(days=1))})
    kwargs: dict[str, Any] = {
        "Resource": "ExperimentTrialComponent", "SearchExpression": {"Filters": filters},
        "SortBy": "TrialComponentName" if sort_by == "Name" else "CreationTime", "SortOrder": sort_order,
    }
    found: list[tuple[datetime.datetime, str, RunRecord]] = []
    try:
        groups = await run_groups(backend, experiment_name)
        for group in groups:
            filters[0]["Value"] = group
            token = None
            while True:
                page = await backend._call(backend._sagemaker.search, **kwargs, MaxResults=100,
                                        **({"NextToken": token} if token else {}))
                for result in page.get("Results") or ():
                    listed = listed_run(result.get("TrialComponent") or {}, experiment_name)
                    if listed is not None and (after is None or listed[0] > after) and (
                            before is None or listed[0] < before) and (where is None or where(listed[2])):
                        found.append(listed)
                token = page.get("NextToken")
                # The API sorts across pages, so the first max_results found are the ones wanted.
                if not token or (max_results is not None and len(found) >= max_results and len(groups) == 1):
                    break
    except (botocore.exceptions.ClientError, TransportError) as exc:
        raise BackendError(f"could not list the runs of experiment {experiment_name!r}: {exc}. Check the "
                           "IAM permissions sagemaker:ListTrials and sagemaker:Search") from exc
    # Sorted again here: not every implementation of Search sorts (moto ignores SortBy).
    by_name = sort_by == "Name"
    found.sort(key=lambda item: item[1] if by_name else item[0], reverse=sort_order == "Descending")
    records = [record for _, _, record in found]
    return records if max_results is None else records[:max_results]

async def run_groups(backend: SageMakerBackend, experiment_name: str) -> list[str]:
    """The trials whose trial components may be the experiment's runs: its default run group
    first, then every other trial of it (a pipeline's executions).

    Raises:
        botocore.exceptions.ClientError, TransportError: the trials could not be listed.
    """
    default = run_group_name(experiment_name)
    try:
        trials = await backend._all(backend._sagemaker.list_trials, "TrialSummaries", ExperimentName=experiment_name)
    except botocore.exceptions.ClientError as exc:
        if not not_found(exc):
            raise
        trials = []
    return [default] + sorted({str(t["TrialName"]) for t in trials} - {default})

def listed_run(component: dict[str, Any],
                experiment_name: str) -> tuple[datetime.datetime, str, RunRecord] | None:
    name = str(component.get("TrialComponentName", ""))
    prefix = f"{experiment_name}-"
    if not name.startswith(prefix) or len(name) == len(prefix):
        logger.debug("sagerun: %s is in run group of %s but not named as its runs; not listed", name,
                     experiment_name)
        return None
    record = RunRecord(experiment_name=experiment_name, run_name=name[len(prefix):],
                       trial_name=run_group_name(experiment_name), trial_component_name=name)
    parents = component.get("Parents") or []  # moto's Search gives none
    if parents and parents[0].get("TrialName"):
        record.trial_name = str(parents[0]["TrialName"])
    status = component.get("Status") or {}
    record.status, record.status_message = status.get("PrimaryStatus"), status.get("Message")
    end = component.get("EndTime")
    record.end_time = end if isinstance(end, datetime.datetime) else None
    merge_described(record, component)
    tags = as_dict(component.get("Tags") or [])
    record.parent = tags.pop(PARENT_TAG, None)
    tags.pop(RUN_TAG["Key"], None)
    record.tags = as_list(tags)
    created = aware(component.get("CreationTime")) or datetime.datetime.min.replace(
        tzinfo=datetime.timezone.utc)
    return created, name, record

def aware(moment: Any) -> datetime.datetime | None:
    """``moment`` with a time zone; a naive datetime is local time, as botocore takes it."""
    if not isinstance(moment, datetime.datetime):
        return None
    return moment if moment.tzinfo is not None else moment.astimezone()

def _search_time(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def merge_described(record: RunRecord, described: dict[str, Any]) -> RunRecord:
    """``record`` with what SageMaker describes of its trial component: parameters, artifacts,
    start time and display name, where the record has none."""
    for name, value in (described.get("Parameters") or {}).items():
        record.parameters.setdefault(name, value.get("StringValue", value.get("NumberValue")))
    for source, target in (("InputArtifacts", record.input_artifacts), ("OutputArtifacts", record.output_artifacts)):
        for name, value in (described.get(source) or {}).items():
            target.setdefault(name, Artifact(value["Value"], value.get("MediaType")))
    start = described.get("StartTime")
    if isinstance(start, datetime.datetime):
        record.start_time = start
    record.run_display_name = record.run_display_name or described.get("DisplayName")
    return record
