"""Signals in the middle of a training loop, with real processes: the run ends Stopped or Failed in
SageMaker (moto) and every point logged before the signal reaches the endpoint (the recording fake).

The child logs ``loss`` at steps 0, 1, 2, ... and prints one JSON line with ``ingest_stats`` once
the run's block has exited; the parent sends the signal once the child said it is logging.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

_PRELUDE = """
import json, os, signal, sys, time
# A terminal's Ctrl-C: a test run started as a background job inherits SIGINT ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)
import sagerun, sagerun.sync
session = sagerun.Session(region="us-east-1", endpoint_url={moto!r}, metrics_endpoint_url={fake!r},
                          retry_initial=0.01, retry_max_backoff=0.05, retry_deadline=5.0, close_timeout=10.0)
def report(run):
    s = run.ingest_stats
    print(json.dumps({{"enqueued": s.enqueued, "delivered": s.delivered, "failed": s.failed}}), flush=True)
"""

SYNC_LOOP = """
{handler}
run = sagerun.sync.Run("proc", {name!r}, session=session)
try:
    with run:
        for step in range(10**9):
            run.log_metric("loss", step / 7, step=step)
            if step == 500:
                print("logging", flush=True)
            if step % 100 == 0:
                time.sleep(0.01)
finally:
    report(run)
"""

ASYNC_LOOP = """
import anyio
async def main():
    run = sagerun.Run("proc", {name!r}, session=session)
    try:
        async with run:
            for step in range(10**9):
                await run.log_metric("loss", step / 7, step=step)
                if step == 500:
                    print("logging", flush=True)
                if step % 100 == 0:
                    await anyio.sleep(0.01)
    finally:
        report(run)
anyio.run(main)
"""


def start_child(moto_url: str, fake_url: str, body: str, **fields: str) -> subprocess.Popen[str]:
    script = _PRELUDE.format(moto=moto_url, fake=fake_url) + textwrap.dedent(body).format(**fields)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=os.environ)
    assert child.stdout is not None
    line = child.stdout.readline()  # blocks until the child logs; bounded by the child's own loop
    assert line == "logging\n", f"child did not start: {line!r} {child.stderr.read() if child.poll() is not None else ''}"
    return child


def finish(child: subprocess.Popen[str], sig: int) -> tuple[int, str, str]:
    time.sleep(0.2)
    child.send_signal(sig)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        pytest.fail(f"the child hung after signal {sig}: {err[-2000:]}")
    return child.returncode, out, err


def steps_received(fake, name: str) -> list[int]:
    return sorted(p["step"] for p in fake.points if p["trial_component"] == f"proc-{name}")


def check_flushed(fake, name: str, out: str, err: str = "") -> None:
    stats = json.loads(out.strip().splitlines()[-1])
    steps = steps_received(fake, name)
    assert stats["enqueued"] > 500
    # Every point logged before the signal arrived, exactly once, and nothing else.
    assert steps == list(range(stats["enqueued"])), f"{len(steps)} received of {stats['enqueued']} logged\n{err[-3000:]}"
    assert stats["failed"] == 0


@pytest.mark.parametrize("api", ["sync", "async"])
def test_keyboard_interrupt_mid_loop_stops_the_run_and_flushes_the_queue(moto_url, metrics_fake, sagemaker, api):
    name = f"ctrl-c-{api}"
    child = start_child(moto_url, metrics_fake.url, SYNC_LOOP if api == "sync" else ASYNC_LOOP, name=name,
                        handler="")
    code, out, err = finish(child, signal.SIGINT)
    assert code != 0 and "KeyboardInterrupt" in err  # the interrupt still ends the program, as it should
    status = sagemaker.describe_trial_component(TrialComponentName=f"proc-{name}")["Status"]
    assert status["PrimaryStatus"] == "Stopped", err[-2000:]
    check_flushed(metrics_fake, name, out, err)


def test_sigterm_with_a_handler_that_exits_fails_the_run_and_flushes_the_queue(moto_url, metrics_fake, sagemaker):
    """What a training script can do today (SageMaker stops a job with SIGTERM): turn it into SystemExit."""
    child = start_child(moto_url, metrics_fake.url, SYNC_LOOP, name="term-handled",
                        handler="signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))")
    code, out, _ = finish(child, signal.SIGTERM)
    assert code == 143
    check_flushed(metrics_fake, "term-handled", out)
    status = sagemaker.describe_trial_component(TrialComponentName="proc-term-handled")["Status"]
    assert (status["PrimaryStatus"], status.get("Message")) == ("Failed", "SystemExit: 143")


@pytest.mark.parametrize("api", ["sync", "async"])
def test_sigterm_with_no_handler_stops_the_run_and_flushes_the_queue(moto_url, metrics_fake, sagemaker, api):
    """How SageMaker stops a job: SIGTERM, to a script that set no handler of its own."""
    name = f"term-default-{api}"
    child = start_child(moto_url, metrics_fake.url, SYNC_LOOP if api == "sync" else ASYNC_LOOP, name=name,
                        handler="")
    code, out, err = finish(child, signal.SIGTERM)
    assert out.strip(), f"the child died at once (exit {code}): no run was closed"
    assert code == 143, err[-2000:]  # 128 + SIGTERM, as if the signal had ended it
    status = sagemaker.describe_trial_component(TrialComponentName=f"proc-{name}")["Status"]
    assert status["PrimaryStatus"] == "Stopped", err[-2000:]
    check_flushed(metrics_fake, name, out, err)
