"""The MLflow server's own ceiling: a plain client posting 1,000-metric ``runs/log-batch`` requests
back to back over one kept-alive connection, nothing else on the client.

Points are ``--steps`` × 10, as for the other contenders; end to end is from the first request to
the last answer.
"""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import _common


def main() -> None:
    args = _common.parse_args(__doc__.splitlines()[0])
    parts = urlsplit(args.mlflow)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def post(endpoint: str, body: dict) -> dict:
        conn.request("POST", f"/api/2.0/mlflow/{endpoint}", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read() or b"{}")
        if response.status != 200:
            raise SystemExit(f"{endpoint}: {response.status} {answer}")
        return answer

    experiment = post("experiments/create", {"name": _common.run_name("ceiling")})["experiment_id"]
    run_id = post("runs/create", {"experiment_id": experiment, "start_time": int(time.time() * 1000)})["run"]["info"]["run_id"]
    points = [(name, step) for step in range(args.steps) for name in _common.METRICS]
    cpu, started = _common.cpu_now(), time.perf_counter()
    for start in range(0, len(points), 1_000):
        now = int(time.time() * 1000)
        post("runs/log-batch", {"run_id": run_id, "metrics": [
            {"key": name, "value": 0.5, "timestamp": now, "step": step} for name, step in points[start:start + 1_000]]})
    elapsed = time.perf_counter() - started
    _common.emit({"logged": len(points), "log_s": elapsed, "e2e_s": elapsed}, _common.cpu_now() - cpu)


if __name__ == "__main__":
    main()
