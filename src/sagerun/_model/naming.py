"""Model · names of experiments, run groups and runs, by the rules of sagemaker.experiments."""

from __future__ import annotations

import re
import secrets
import time

MAX_NAME_LENGTH = 59
"""Experiment and run names each; joined they make a trial component name of at most 120."""
_NOT_ALLOWED = re.compile(r"[^a-z0-9-]+")
RUN_GROUP_TEMPLATE = "Default-Run-Group-{}"
RUN_NAME_BASE = "sagemaker-run"
RUN_TAG = {"Key": "sagemaker:trial-component-source", "Value": "run"}
#: the tag that names a child run's parent trial component on SageMaker
PARENT_TAG = "sagerun:parent-run"


def check_name(argument: str, value: object) -> str:
    """``value`` as SageMaker accepts it, or a ``ValueError``/``TypeError`` naming ``argument``.

    Lower-cased as the SageMaker SDK does; any other character than a letter, a digit or a hyphen
    (``"lr-0.01"``) becomes a hyphen, so that names people write for runs are accepted. The name
    as written stays the display name.
    """
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str; got {type(value).__name__}")
    name = _NOT_ALLOWED.sub("-", value.lower()).strip("-")
    if not name:
        raise ValueError(f"{argument} must hold at least one letter or digit; got {value!r}")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{argument} must be at most {MAX_NAME_LENGTH} characters; {value!r} has {len(name)}")
    return name


def generate_run_name() -> str:
    """A unique run name in the SageMaker SDK's style: ``sagemaker-run-<time>-<random>``."""
    stamp = time.strftime("%Y-%m-%d-%H-%M-%S", time.gmtime())
    return f"{RUN_NAME_BASE}-{stamp}-{int(time.time() * 1000) % 1000:03d}-{secrets.token_hex(2)}"


def trial_component_name(experiment_name: str, run_name: str) -> str:
    return f"{experiment_name}-{run_name}"


def run_group_name(experiment_name: str) -> str:
    return RUN_GROUP_TEMPLATE.format(experiment_name[:100])
