"""Durable mode: a training process killed with SIGKILL loses nothing logged before the last linger
interval; `sagerun sync` delivers it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter

import sagerun
from sagerun.store.spool import Spool

TRAINING = textwrap.dedent("""
    import sys, time
    import sagerun.sync as sr

    session = sr.Session(durable=True, linger=0.01, queue_capacity=1_000_000)
    with sr.Run("exp", "killed", session=session) as run:
        for step in range(2_000):
            run.log_metric("loss", step / 3, step=step)
        run.flush()          # everything up to here is delivered or journaled ...
        for step in range(2_000, 5_000):
            run.log_metric("loss", step / 3, step=step)
        time.sleep(0.5)      # ... and this is past the linger interval: journaled too
        print("logged", flush=True)
        time.sleep(60)
""")


def test_sigkill_in_durable_mode_loses_nothing_sync_delivers_the_rest(moto_url, metrics_fake, tmp_path):
    metrics_fake.configure(latency_ms=200)  # slow: most points are still undelivered at the kill
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url,
           "SAGERUN_HOME": str(tmp_path)}
    child = subprocess.Popen([sys.executable, "-c", TRAINING], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "logged"
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(30)
    with Spool(str(tmp_path)) as spool:
        assert spool.count() > 0  # the kill left undelivered points behind
    metrics_fake.configure(latency_ms=0)
    subprocess.run([sys.executable, "-m", "sagerun", "sync", "--store", str(tmp_path)], env=env, check=True,
                   capture_output=True, timeout=120)
    received = Counter((p["name"], p["step"], p["value"]) for p in metrics_fake.points)
    logged = Counter(("loss", step, step / 3) for step in range(5_000))
    assert set(received) == set(logged)  # every point arrived; a few may twice (at least once)
    with Spool(str(tmp_path)) as spool:
        assert spool.count() == 0


async def test_durable_run_leaves_nothing_behind_once_delivered(session, metrics_fake, tmp_path):
    durable = sagerun.Session(**{**session.__dict__, "durable": True, "store": str(tmp_path)})
    async with sagerun.Run("exp", "durable-ok", session=durable) as run:
        for step in range(3_000):
            await run.log_metric("loss", step / 3, step=step)
    assert Counter((p["step"], p["value"]) for p in metrics_fake.points) == Counter(
        (step, step / 3) for step in range(3_000))
    with Spool(str(tmp_path)) as spool:
        assert spool.count() == 0


async def test_durable_run_with_the_endpoint_down_keeps_each_point_once(session, metrics_fake, tmp_path):
    metrics_fake.configure(down=True)
    durable = sagerun.Session(**{**session.__dict__, "durable": True, "store": str(tmp_path), "close_timeout": 0.5})
    async with sagerun.Run("exp", "durable-down", session=durable) as run:
        for step in range(500):
            await run.log_metric("loss", step / 3, step=step)
    with Spool(str(tmp_path)) as spool:
        kept = Counter((p[2], p[1]) for batch in spool.pending(10_000) for p in batch.points)
    assert kept == Counter((step, step / 3) for step in range(500))
    assert run.ingest_stats.failed == 500
