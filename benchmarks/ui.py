"""How fast `sagerun ui` answers over a large store: 1,000 runs, one of them with a metric of
1,000,000 points and a table of as many rows. Run by hand:

    .venv/bin/python benchmarks/ui.py [--runs 1000] [--points 1000000] [--rounds 5]

The store is logged through the public API into a temporary folder; `sagerun ui` runs in its own
process, as a user starts it; each endpoint is fetched `--rounds` times after one warm-up and the
median and slowest are printed. With Debian's chromium and playwright installed, the run page of
the long metric is also opened in headless Chromium and timed until its chart is drawn.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np

import sagerun
import sagerun.sync


def fill(store: str, runs: int, points: int) -> None:
    session = sagerun.Session(backend="local", store=store)
    with sagerun.sync.Run("big", "long", session=session) as run:
        values = np.cumsum(np.random.default_rng(0).normal(size=points))
        run.log_metrics({"train:loss": values}, step=np.arange(points))
        run.log_table("scores", {"user": np.arange(points), "score": values})
    for index in range(runs - 1):
        with sagerun.sync.Run(f"sweep-{index % 10}", f"trial-{index}", session=session,
                              tags={"batch": str(index % 7)}) as run:
            run.log_parameters({"lr": 10 ** -(index % 5), "layers": index % 4})
            run.log_metrics({"val:loss": np.linspace(1, 0.1, 10)}, step=np.arange(10))


def timed(url: str, rounds: int) -> tuple[float, float, int]:
    """Median and slowest seconds of ``rounds`` fetches of ``url``, and the size of its body."""
    took, size = [], 0
    for attempt in range(rounds + 1):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=60) as response:
            size = len(response.read())
        if attempt:  # the first one warms the page cache and SQLite's
            took.append(time.perf_counter() - started)
    return statistics.median(took), max(took), size


def browser_render(url: str, rounds: int) -> dict[str, list[float]]:
    """Seconds from opening the long run's page to its chart being drawn, in headless Chromium."""
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {}
    if chromium is None:
        return {}
    took: dict[str, list[float]] = {"page shown, first visit": [], "chart drawn, first visit": [],
                                    "page shown, again": [], "chart drawn, again (plotly.js cached)": []}
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for _ in range(rounds):
            context = browser.new_context(viewport={"width": 1280, "height": 900})  # an empty cache
            for visit in ("first visit", "again"):
                page = context.new_page()
                started = time.perf_counter()
                page.goto(url + "#/run/big/long")
                page.wait_for_function("document.body.dataset.shown === '#/run/big/long'", timeout=60_000)
                took[f"page shown, {visit}"].append(time.perf_counter() - started)
                page.wait_for_selector(".chart[data-metric='train:loss'][data-points] .main-svg", timeout=60_000)
                took[next(k for k in took if k.startswith(f"chart drawn, {visit}"))].append(
                    time.perf_counter() - started)
                page.close()
            context.close()
        browser.close()
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ui-bench-") as folder:
        store = f"{folder}/store"
        started = time.perf_counter()
        fill(store, args.runs, args.points)
        print(f"store: {args.runs:,} runs, one metric of {args.points:,} points, logged in "
              f"{time.perf_counter() - started:.0f} s", flush=True)
        server = subprocess.Popen([sys.executable, "-m", "sagerun", "ui", "--store", store, "--port", "0"],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split(" on ", 1)[1].split()[0]
            rows = [("page /", url), ("/api/runs (all runs, tags, parameters)", url + "api/runs"),
                    ("/api/runs/big/long (one run)", url + "api/runs/big/long"),
                    (f"/api/.../metrics/train:loss ({args.points:,} points → ≤4,000)",
                     url + "api/runs/big/long/metrics/train:loss"),
                    ("/api/.../metrics/val:loss (10 points)", url + "api/runs/sweep-0/trial-0/metrics/val:loss"),
                    (f"/api/.../tables/scores, rows 1-50 of {args.points:,}", url + "api/runs/big/long/tables/scores"),
                    ("/api/.../tables/scores, the last 50 rows", url + "api/runs/big/long/tables/scores"
                     f"?offset={args.points - 50}&limit=50")]
            print(f"{'endpoint':<58}{'median ms':>10}{'slowest ms':>11}{'bytes':>11}")
            for name, address in rows:
                median, slowest, size = timed(address, args.rounds)
                print(f"{name:<58}{median * 1e3:>10.1f}{slowest * 1e3:>11.1f}{size:>11,}")
            rendered = browser_render(url, args.rounds)
            for visit, seconds in rendered.items():
                print(f"{'browser, run page: ' + visit:<58}"
                      f"{statistics.median(seconds) * 1e3:>10.1f}{max(seconds) * 1e3:>11.1f}{'':>11}")
            if not rendered:
                print("browser: not measured (needs chromium and playwright)")
        finally:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
