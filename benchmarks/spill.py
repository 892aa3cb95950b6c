"""A training loop that logs faster than the endpoint takes points (issue 13, part 2): the sync
facade logs ``--points`` points as fast as it can to the metrics fake at 20 ms, with the default
queue of 100,000 points, under the ``spill`` policy (the default) and under ``block``.

    .venv/bin/python benchmarks/spill.py [--points 1000000] [--policies spill,block]

Each row runs the training loop in its own process (its peak RSS is its own) with its sender
process; the fake and moto run in theirs. The row reports the training loop's mean cost a point
and its slowest call, the peak RSS of the training process and of the sender (VmHWM, read just
before close), how long the sender took to be ready, what was delivered before close returned and
what was left in the spool, then runs ``sagerun sync`` and counts what the fake received: every
point must be there once ("lost" is what is not).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _endpoints import FAKE_ENV, fake_reset, fake_stats, metrics_fake, moto_reset, moto_server  # noqa: E402

TRAINING = textwrap.dedent("""
    import json, logging, os, resource, sys, time
    import sagerun, sagerun.sync

    ready = []
    class Ready(logging.Handler):
        def emit(self, record):
            if "was ready" in record.getMessage():
                ready.append(float(record.getMessage().split("ready ")[1].split(" s")[0]))
    logger = logging.getLogger("sagerun")
    logger.addHandler(Ready())

    def sender_hwm():
        # The sender is a child of the thread that started it (the sync facade's event-loop thread).
        children = [c for task in os.listdir("/proc/self/task")
                    for c in open(f"/proc/self/task/{task}/children").read().split()]
        for pid in children:
            if b"sagerun._ingest.sender" in open(f"/proc/{pid}/cmdline", "rb").read():
                for line in open(f"/proc/{pid}/status"):
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        return None

    points, policy = int(sys.argv[1]), sys.argv[2]
    session = sagerun.Session(full_policy=policy)
    # The sender's start-up time, from its debug record, in a run of its own: debug logging would
    # slow the measured loop (the sender passes its debug records on).
    logger.setLevel(logging.DEBUG)
    with sagerun.sync.Run("bench", f"ready-{time.time_ns()}", session=session):
        while not ready:
            time.sleep(0.01)
    logger.setLevel(logging.WARNING)
    clock = time.perf_counter
    worst = 0.0
    started = clock()
    with sagerun.sync.Run("bench", f"spill-{policy}-{points}-{time.time_ns()}", session=session) as run:
        log = run.log_metric
        for step in range(points):
            begin = clock()
            log("loss", 0.5, step=step)
            took = clock() - begin
            if took > worst:
                worst = took
        logged = clock() - started
        sender = sender_hwm()
    closed = clock() - started
    stats = run.ingest_stats
    print(json.dumps({"mean_us": logged / points * 1e6, "slowest_ms": worst * 1e3, "logging_s": logged,
                      "close_s": closed - logged, "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "sender_mib": sender, "ready_s": ready[0] if ready else None,
                      "delivered": stats.delivered, "kept": stats.failed, "dropped": stats.dropped}))
""")


def row(points: int, policy: str, fake: str, moto: str) -> dict:
    fake_reset(fake)
    moto_reset(moto)
    with tempfile.TemporaryDirectory() as store:
        env = {**os.environ, **FAKE_ENV, "AWS_ENDPOINT_URL": moto, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": fake,
               "SAGERUN_HOME": store}
        done = subprocess.run([sys.executable, "-c", TRAINING, str(points), policy], env=env, capture_output=True,
                              text=True, timeout=1800)
        if done.returncode:
            raise SystemExit(done.stderr)
        result = json.loads(done.stdout.splitlines()[-1])
        started = time.monotonic()
        synced = subprocess.run([sys.executable, "-m", "sagerun", "sync", "--store", store, "--json"], env=env,
                                capture_output=True, text=True, timeout=1800)
        result["sync_s"] = time.monotonic() - started
        result["synced"] = json.loads(synced.stdout)["delivered"] if synced.returncode == 0 else None
    received = fake_stats(fake)
    result["lost"] = points - received["distinct_points"]
    result["twice"] = received["points"] - received["distinct_points"]
    return {"points": points, "policy": policy, **result}


def show(rows: list[dict]) -> None:
    print(f"{'points':>9} {'policy':>6} {'µs/pt':>6} {'slowest ms':>10} {'RSS MiB':>8} {'sender MiB':>10} "
          f"{'ready s':>7} {'log s':>6} {'close s':>7} {'delivered':>10} {'spooled':>9} {'synced':>9} {'lost':>5}")
    for r in rows:
        sender = f"{r['sender_mib']:.0f}" if r["sender_mib"] else "-"
        ready = f"{r['ready_s']:.2f}" if r["ready_s"] is not None else "-"
        print(f"{r['points']:>9,} {r['policy']:>6} {r['mean_us']:>6.2f} {r['slowest_ms']:>10.1f} {r['rss_mib']:>8.0f} "
              f"{sender:>10} {ready:>7} {r['logging_s']:>6.1f} {r['close_s']:>7.1f} {r['delivered']:>10,} "
              f"{r['kept']:>9,} {r['synced'] if r['synced'] is not None else '-':>9} {r['lost']:>5}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="the row RSS is compared with")
    parser.add_argument("--policies", default="spill,block")
    args = parser.parse_args()
    rows = []
    with metrics_fake(20) as fake, moto_server() as moto:
        for policy in args.policies.split(","):
            for points in (args.small, args.points):
                rows.append(row(points, policy, fake, moto))
                show(rows[-1:])
    print()
    show(rows)
    for policy in args.policies.split(","):
        small, big = (r for r in rows if r["policy"] == policy)
        print(f"{policy}: peak RSS {big['points']:,} ÷ {small['points']:,} points: training process "
              f"{big['rss_mib'] / small['rss_mib']:.2f}×, sender "
              f"{big['sender_mib'] / small['sender_mib']:.2f}×" if big["sender_mib"] and small["sender_mib"] else "")
    out = Path(__file__).resolve().parent / "results" / f"spill-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
