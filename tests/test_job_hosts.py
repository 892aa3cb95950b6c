"""A training job of two hosts, two processes each: every host and rank logs to the one run the
job's ExperimentConfig names, and only the lead host's rank 0 saves its parameters and ends it
(moto for the job and the trial component, the recording fake for the points)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from test_load_run import experiment_config, seed_run, training_job

SCRIPT = textwrap.dedent("""
    import os, sys, numpy as np, sagerun, sagerun.sync
    session = sagerun.Session(region="us-east-1", endpoint_url=sys.argv[1], metrics_endpoint_url=sys.argv[2],
                              retry_initial=0.01, retry_max_backoff=0.05, linger=0.005)
    rank = int(os.environ["RANK"])
    with sagerun.sync.load_run(session=session) as run:
        run.log_parameter("written_by", f"rank {rank}")
        run.set_tag(f"rank-{rank}", "was here")
        run.log_metrics({f"loss-{rank}": np.linspace(1.0, 0.1, 500)}, step=np.arange(500))
        if os.environ.get("FAIL"):
            raise RuntimeError(f"rank {rank} ran out of memory")
""")


def _process(moto_url: str, fake_url: str, arn: str, rank: int, host_env: dict[str, str], fail: bool = False):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SM_", "RANK", "SAGERUN_RESOURCE"))}
    env.update(host_env, TRAINING_JOB_ARN=arn, RANK=str(rank), **({"FAIL": "1"} if fail else {}))
    return subprocess.Popen([sys.executable, "-c", SCRIPT, moto_url, fake_url], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_hosts_of_two_ranks_log_to_one_run_that_the_lead_alone_ends(moto_url, metrics_fake, sagemaker, tmp_path):
    seed_run(sagemaker, "dist", "two-hosts")
    arn = training_job(sagemaker, "dist-job", experiment_config("dist", "two-hosts"))
    lead_host = {"SM_CURRENT_HOST": "algo-1", "SM_HOSTS": json.dumps(["algo-1", "algo-2"])}
    config = tmp_path / "resourceconfig.json"  # the second host is told by its resource config alone
    config.write_text(json.dumps({"current_host": "algo-2", "hosts": ["algo-1", "algo-2"]}))
    other_host = {"SAGERUN_RESOURCE_CONFIG": str(config)}
    first = [_process(moto_url, metrics_fake.url, arn, rank, lead_host) for rank in (0, 1)]
    first += [_process(moto_url, metrics_fake.url, arn, 2, other_host)]
    for process in first:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    # A rank of the other host fails after the lead has ended the run.
    late = _process(moto_url, metrics_fake.url, arn, 3, other_host, fail=True)
    _, err = late.communicate(timeout=120)
    assert late.returncode == 1 and "rank 3 ran out of memory" in err

    described = sagemaker.describe_trial_component(TrialComponentName="dist-two-hosts")
    assert described["Status"]["PrimaryStatus"] == "Completed"
    assert described["Parameters"]["written_by"] == {"StringValue": "rank 0"}
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=described["TrialComponentArn"])["Tags"]}
    assert tags["sagerun:failed:algo-2/rank3"] == "Failed: RuntimeError: rank 3 ran out of memory"
    assert "rank-0" in tags and "rank-3" not in tags  # the tags a process set are saved by the owner alone
    received: dict[str, list[int]] = {}
    for point in metrics_fake.points:
        if point["trial_component"] == "dist-two-hosts":
            received.setdefault(point["name"], []).append(point["step"])
    assert {name: sorted(steps) for name, steps in received.items()} == {
        f"loss-{rank}": list(range(500)) for rank in range(4)}
