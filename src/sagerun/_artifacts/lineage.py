"""Artifacts · lineage artifacts for charts and tables: CreateArtifact, then AddAssociation with the run.

This is how the SageMaker SDK shows charts in Studio and pipelines: an artifact whose type is the
chart's (``ConfusionMatrix``, ``ROCCurve``, ``PrecisionRecallCurve``, ``Table``) and whose source
is the S3 object (with its ETag), ``Produced`` by the run's trial component (an output), or
``ContributedTo`` it (an input).

It is a second record, best effort: the trial component's own output artifacts, saved with the run,
are the record users see and rely on. So a failure here is logged at INFO and logging goes on, and
only throttling and connection failures are retried, briefly: a lineage API that answers 500 (moto,
which does not implement these calls, or a region without them) costs one request per chart, not a
retry loop.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..backends.aws import call_with_retries, short_error
from .clients import AwsClients
from .storage import StoredObject

logger = logging.getLogger("sagerun")
_NOT_NAME = re.compile(r"[^a-zA-Z0-9]+")
_MAX_NAME = 120
_RETRY_DEADLINE = 10.0


def lineage_name(name: str, fallback: str) -> str:
    """``name`` as CreateArtifact accepts it: letters and digits joined by single hyphens, at most 120."""
    cleaned = _NOT_NAME.sub("-", name).strip("-")[:_MAX_NAME].rstrip("-")
    return cleaned or fallback


class Lineage:
    """Links the stored charts and tables of one run (a trial component) to it."""

    def __init__(self, clients: AwsClients, trial_component_name: str) -> None:
        self.clients = clients
        self.trial_component_name = trial_component_name
        self._trial_component_arn: str | None = None

    async def link(self, name: str, artifact_type: str, stored: StoredObject, *, is_output: bool) -> str | None:
        """Create the lineage artifact of ``stored`` and associate it with the run; return its ARN,
        or ``None`` when that failed (logged at INFO; never raised)."""
        try:
            return await self._link(name, artifact_type, stored, is_output)
        except Exception as exc:
            logger.info("sagerun: no lineage artifact for %s %r of %s (the run's %s artifacts still list it): %s",
                        artifact_type, name, self.trial_component_name, "output" if is_output else "input",
                        short_error(exc))
            return None

    async def _link(self, name: str, artifact_type: str, stored: StoredObject, is_output: bool) -> str:
        sagemaker = await self.clients.get("sagemaker")
        session = self.clients.session
        deadline = min(session.retry_deadline, _RETRY_DEADLINE)
        if self._trial_component_arn is None:
            described = await call_with_retries(session, sagemaker.describe_trial_component, deadline=deadline,
                                                TrialComponentName=self.trial_component_name)
            self._trial_component_arn = str(described["TrialComponentArn"])
        source: dict[str, Any] = {"SourceUri": stored.uri}
        if stored.etag:
            source["SourceTypes"] = [{"SourceIdType": "S3ETag", "Value": stored.etag}]
        created = await call_with_retries(
            session, sagemaker.create_artifact, transient_only_if_throttled=True, deadline=deadline,
            ArtifactName=lineage_name(name, artifact_type), ArtifactType=artifact_type, Source=source)
        artifact_arn = str(created["ArtifactArn"])
        # An output was produced by the run; an input contributed to it (the SageMaker SDK's edges).
        if is_output:
            edge = {"SourceArn": self._trial_component_arn, "DestinationArn": artifact_arn, "AssociationType": "Produced"}
        else:
            edge = {"SourceArn": artifact_arn, "DestinationArn": self._trial_component_arn,
                    "AssociationType": "ContributedTo"}
        await call_with_retries(session, sagemaker.add_association, transient_only_if_throttled=True,
                                deadline=deadline, **edge)
        return artifact_arn

