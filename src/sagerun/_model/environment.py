"""Model · which SageMaker job this process runs in, found as the SageMaker SDK finds it for ``load_run()``.

In order: ``TRAINING_JOB_ARN`` in the environment (set by SageMaker in training containers), else
the processing job's ``/opt/ml/config/processingjobconfig.json`` (its ``ProcessingJobArn``), else
``TRANSFORM_JOB_ARN``. ``SAGERUN_PROCESSING_JOB_CONFIG`` names another file (for tests, or a
container that mounts it elsewhere).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Literal, Mapping

JobKind = Literal["training", "processing", "transform"]

TRAINING_JOB_ARN = "TRAINING_JOB_ARN"
TRANSFORM_JOB_ARN = "TRANSFORM_JOB_ARN"
PROCESSING_JOB_CONFIG = "/opt/ml/config/processingjobconfig.json"
"""Where SageMaker writes a processing job's configuration; read at each call, so it can be patched."""


@dataclasses.dataclass(frozen=True)
class JobEnvironment:
    """The SageMaker job this process belongs to."""

    kind: JobKind
    arn: str

    @property
    def name(self) -> str:
        """The job name: the last part of the ARN (``...:training-job/<name>``)."""
        return self.arn.rsplit("/", 1)[-1]


def detect_job(environ: Mapping[str, str] | None = None,
               processing_job_config: str | None = None) -> JobEnvironment | None:
    """The job this process runs in, or ``None`` outside SageMaker jobs.

    Args:
        environ: the environment to read; ``os.environ`` when ``None``.
        processing_job_config: the processing job's configuration file; ``PROCESSING_JOB_CONFIG``
            when ``None``.

    Raises:
        RuntimeError: the processing job's configuration file exists but cannot be read or has no
            ``ProcessingJobArn``.
    """
    env = os.environ if environ is None else environ
    arn = env.get(TRAINING_JOB_ARN)
    if arn:
        return JobEnvironment("training", arn)
    path = processing_job_config or os.environ.get("SAGERUN_PROCESSING_JOB_CONFIG") or PROCESSING_JOB_CONFIG
    try:
        with open(path, encoding="utf-8") as file:
            config = json.load(file)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        raise RuntimeError(f"sagerun: the processing job configuration {path} could not be read: {exc}") from exc
    else:
        arn = config.get("ProcessingJobArn") if isinstance(config, dict) else None
        if not arn:
            raise RuntimeError(f"sagerun: the processing job configuration {path} has no ProcessingJobArn")
        return JobEnvironment("processing", arn)
    arn = env.get(TRANSFORM_JOB_ARN)
    if arn:
        return JobEnvironment("transform", arn)
    return None


#: where launchers put a process's global rank: torchrun and Lightning, Open MPI, Intel MPI and MPICH, Slurm
_RANK_VARIABLES = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "SLURM_PROCID")


def process_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's global rank in a distributed training, as its launcher set it; 0 when none did."""
    return _first_number(os.environ if environ is None else environ, _RANK_VARIABLES)


_LOCAL_RANK_VARIABLES = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID")


def local_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's rank on its host, as its launcher set it; 0 when none did."""
    return _first_number(os.environ if environ is None else environ, _LOCAL_RANK_VARIABLES)


def _first_number(env: Mapping[str, str], variables: tuple[str, ...]) -> int:
    for variable in variables:
        raw = env.get(variable)
        if raw is not None and raw.strip().isdigit():
            return int(raw)
    return 0


EXPERIMENT_NAME = "SAGERUN_EXPERIMENT_NAME"
RUN_NAME = "SAGERUN_RUN_NAME"


def names_from_env(environ: Mapping[str, str] | None = None) -> tuple[str | None, str | None]:
    """The experiment and run that ``SAGERUN_EXPERIMENT_NAME`` and ``SAGERUN_RUN_NAME`` name, each
    ``None`` when unset or empty: what a framework integration opens when it is given no names."""
    env = os.environ if environ is None else environ
    return env.get(EXPERIMENT_NAME) or None, env.get(RUN_NAME) or None


#: what every process of one launch of a distributed training shares, launcher by launcher
_LAUNCH_VARIABLES = (("TORCHELASTIC_RUN_ID",), ("SLURM_JOB_ID", "SLURM_STEP_ID"), ("OMPI_MCA_orte_hnp_uri",),
                     ("MASTER_ADDR", "MASTER_PORT"))


def launch_id(environ: Mapping[str, str] | None = None) -> str | None:
    """What the processes of one distributed launch share in their environment (torchrun's run id,
    Slurm's job and step, Open MPI's job, or the rendezvous address), else ``None``."""
    env = os.environ if environ is None else environ
    for variables in _LAUNCH_VARIABLES:
        values = [env.get(name) for name in variables]
        if all(values) and values != ["none"]:  # torchrun without --rdzv-id says "none"
            return "/".join(str(value) for value in values)
    return None


def in_a_job() -> bool:
    """Whether this process runs in a SageMaker job; a processing job's configuration that cannot
    be read counts as one (it matters only where the job is needed, which says what is wrong)."""
    try:
        return detect_job() is not None
    except RuntimeError:
        return True


RESOURCE_CONFIG = "/opt/ml/input/config/resourceconfig.json"
"""Where SageMaker describes a training job's hosts (``current_host``, ``hosts``) in every container."""
PROCESSING_RESOURCE_CONFIG = "/opt/ml/config/resourceconfig.json"
"""The same for a processing job's instances."""


@dataclasses.dataclass(frozen=True)
class Hosts:
    """The hosts of a training job, as this container sees them."""

    current: str | None
    hosts: tuple[str, ...]

    @property
    def lead(self) -> bool:
        """Whether this is the job's lead host (``algo-1``, the first of the hosts), or the only one."""
        return self.current is None or not self.hosts or self.current == self.hosts[0]

    @property
    def several(self) -> bool:
        return len(self.hosts) > 1


def job_hosts(environ: Mapping[str, str] | None = None, resource_config: str | None = None) -> Hosts:
    """This job's hosts: ``SM_CURRENT_HOST`` and ``SM_HOSTS`` (the training toolkit's), else the
    job's ``resourceconfig.json`` (a training job's, else a processing job's;
    ``SAGERUN_RESOURCE_CONFIG`` names another file); none outside a job."""
    env = os.environ if environ is None else environ
    current, listed = env.get("SM_CURRENT_HOST"), env.get("SM_HOSTS")
    if current and listed:
        try:
            hosts = json.loads(listed)
        except ValueError:
            hosts = None
        if isinstance(hosts, list) and all(isinstance(h, str) for h in hosts):
            return Hosts(current, tuple(hosts))
    paths = [resource_config or env.get("SAGERUN_RESOURCE_CONFIG") or RESOURCE_CONFIG]
    if resource_config is None and not env.get("SAGERUN_RESOURCE_CONFIG"):
        paths.append(PROCESSING_RESOURCE_CONFIG)
    config = None
    for path in paths:
        try:
            with open(path, encoding="utf-8") as file:
                config = json.load(file)
            break
        except (OSError, ValueError):
            continue
    hosts = config.get("hosts") if isinstance(config, dict) else None
    if not isinstance(hosts, list):
        return Hosts(current or None, ())
    return Hosts(str(config.get("current_host") or current or "") or None, tuple(str(h) for h in hosts))


def leads_the_job(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process is global rank 0 of the job's lead host: the one that saves a shared
    run's parameters, tags, artifacts and status."""
    return process_rank(environ) == 0 and job_hosts(environ).lead
