"""sagerun ui as a person uses it: a store the test logged, the real `sagerun ui` command, and
Debian's Chromium driven by playwright; plus the JSON endpoints and the guards, over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import sagerun
import sagerun.sync

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c6360f80f0000010101001805ddb40000000049454e44ae426082")
LONG = 200_000  # points of one metric: more than the chart draws
TABLE_ROWS = 1_000


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("ui")
    path = str(root / "store")
    session = sagerun.Session(backend="local", store=path)
    image = root / "sample.png"
    image.write_bytes(PNG_1PX)
    for name, lr, seed in (("fast", 0.1, 1), ("slow", 0.01, 2)):
        with sagerun.sync.Run("mnist", name, session=session, tags={"team": "vision"}) as run:
            run.log_parameters({"lr": lr, "layers": 3})
            for step in range(20):
                run.log_metric("val:loss", 1 / (step + 1) + lr, step=step)
            if seed == 1:
                values = np.random.default_rng(seed).normal(size=LONG)
                values[LONG // 3] = 100.0  # a spike the downsampling must keep
                run.log_metrics({"train:loss": values}, step=np.arange(LONG))
                run.log_image("sample", path=str(image))
                run.log_table("top-items", {"user": list(range(TABLE_ROWS)),
                                            "item": [f"item-{i % 97}" for i in range(TABLE_ROWS)]})
                run.log_confusion_matrix([0, 1, 1, 2, 2, 2], [0, 1, 2, 2, 2, 1], title="val-confusion")
                run.log_roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], title="val-roc")
                with run.child_run("fold-0") as child:
                    child.log_metric("auc", 0.9)
    with sagerun.sync.Run("churn", "xgb", session=session, tags={"team": "growth"}) as run:
        run.log_parameter("depth", 6)
    return path


def start_ui(store: str, *extra: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen([sys.executable, "-m", "sagerun", "ui", "--store", store, "--port", "0", *extra],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "sagerun ui on http" in line, process.stderr.read() if process.poll() is not None else line
    return process, line.split(" on ", 1)[1].split()[0]


@pytest.fixture(scope="module")
def ui(store: str) -> Iterator[str]:
    process, url = start_ui(store)
    yield url
    process.terminate()
    process.wait(10)


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_the_json_endpoints(ui):
    status, body = get(ui + "api/runs")
    runs = json.loads(body)
    assert status == 200
    assert sorted(r["ref"] for r in runs) == ["churn/xgb", "mnist/fast", "mnist/fast-fold-0", "mnist/slow"]
    first = next(r for r in runs if r["ref"] == "mnist/fast")
    assert first["tags"] == {"team": "vision"} and first["parameters"] == {"layers": 3, "lr": 0.1}
    run = json.loads(get(ui + "api/runs/mnist/fast")[1])
    assert run["children"] == ["mnist/fast-fold-0"]
    assert json.loads(get(ui + "api/runs/mnist/fast-fold-0")[1])["parent_ref"] == "mnist/fast"
    assert {m["name"]: m["count"] for m in run["metrics"]} == {"train:loss": LONG, "val:loss": 20}
    image = next(a for a in run["artifacts"]["output"] if a["name"] == "sample")
    assert get(ui + image["url"].lstrip("/")) == (200, PNG_1PX)
    series = json.loads(get(ui + "api/runs/mnist/fast/metrics/train:loss")[1])
    assert series["total"] == LONG and len(series["values"]) <= 4_000
    assert max(series["values"]) == 100.0 and series["steps"][0] == 0 and series["steps"][-1] == LONG - 1
    exact = json.loads(get(ui + "api/runs/mnist/fast/metrics/val:loss")[1])
    assert exact["steps"] == list(range(20)) and exact["values"][0] == pytest.approx(1.1)
    page = json.loads(get(ui + "api/runs/mnist/fast/tables/top-items?offset=950&limit=100")[1])
    assert page["row_count"] == TABLE_ROWS and page["columns"] == ["user", "item"]
    assert [row[0] for row in page["rows"]] == list(range(950, TABLE_ROWS))
    assert get(ui + "api/runs/mnist/fast/tables/top-items?limit=0")[0] == 400
    assert get(ui + "api/runs/mnist/fast/tables/sample")[0] == 422  # an image, not a table
    matrix = json.loads(get(ui + "api/runs/mnist/fast/charts/val-confusion")[1])
    assert matrix["type"] == "ConfusionMatrix" and matrix["confusionMatrix"] == [[1, 0, 0], [0, 1, 1], [0, 1, 2]]
    assert get(ui + "api/runs/mnist/nope")[0] == 404
    assert json.loads(get(ui + "api/runs/mnist/fast/metrics/nope")[1])["error"].startswith("run mnist/fast has no")


@pytest.mark.parametrize("path", ["..%2F..%2Fsagerun.db", "../../sagerun.db", "%2Fetc%2Fpasswd", "..%5C..%5Csagerun.db",
                                  "link/sagerun.db", "link"])
def test_file_routes_cannot_leave_the_store(ui, store, path):
    folder = Path(store) / "artifacts" / "mnist-fast"
    if not (folder / "link").exists():
        os.symlink(store, folder / "link")
    status, _ = get(ui + "files/mnist/fast/" + path)
    assert status == 404


def test_a_missing_store_is_a_clear_answer(tmp_path):
    process, url = start_ui(str(tmp_path / "none"))
    try:
        status, body = get(url + "api/runs")
        assert status == 503 and "no local store at" in json.loads(body)["error"]
    finally:
        process.terminate()
        process.wait(10)


def test_a_corrupt_store_is_a_clear_answer_and_the_page_says_so(tmp_path, browser):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "sagerun.db").write_bytes(b"this is not an SQLite database" * 100)
    process, url = start_ui(str(corrupt))
    try:
        status, body = get(url + "api/runs")
        assert status == 503 and "cannot be read" in json.loads(body)["error"]
        page = open_page(browser, url, "/")
        assert "cannot be read" in page.inner_text("p.error")
        page.close()
    finally:
        process.terminate()
        process.wait(10)


def test_on_another_host_the_token_printed_at_start_is_needed(store):
    process, url = start_ui(store, "--host", "0.0.0.0")
    try:
        assert "?token=" in url
        base, token = url.split("?token=")
        base = base.replace("0.0.0.0", "127.0.0.1")
        assert get(base + "api/runs")[0] == 403
        assert get(f"{base}api/runs?token=wrong")[0] == 403
        request = urllib.request.Request(base + "api/runs", headers={"Authorization": f"Token {token}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser tests: .ci/run installs chromium with apt-get")
        pytest.skip("no chromium: apt-get install -y chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser, url: str, hash_: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(url + "#" + hash_)
    page.wait_for_function(f"document.body.dataset.ready === {json.dumps(hash_)}", timeout=15_000)
    return page


def not_blank(page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / f"{name}.png"
    page.screenshot(path=str(shot), full_page=True)
    pixels = page.evaluate("""async (src) => {
        const img = new Image(); img.src = src; await img.decode();
        const canvas = document.createElement('canvas'); canvas.width = img.width; canvas.height = img.height;
        const ctx = canvas.getContext('2d'); ctx.drawImage(img, 0, 0);
        const data = ctx.getImageData(0, 0, img.width, img.height).data; const seen = new Set();
        for (let i = 0; i < data.length; i += 4 * 97) seen.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]);
        return seen.size; }""", "data:image/png;base64," + __import__("base64").b64encode(shot.read_bytes()).decode())
    assert pixels > 20, f"the {name} page looks blank ({pixels} colours)"
    if os.environ.get("UI_SCREENSHOTS"):  # docs/ui.md's pictures: UI_SCREENSHOTS=docs/ui pytest tests/test_ui.py
        shutil.copy(shot, Path(os.environ["UI_SCREENSHOTS"]) / shot.name)


def test_the_runs_page_lists_filters_and_sorts_the_runs(browser, ui, tmp_path):
    page = open_page(browser, ui, "/")
    rows = page.locator("#runs tbody tr")
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.ref)")) == [
        "churn/xgb", "mnist/fast", "mnist/fast-fold-0", "mnist/slow"]
    page.select_option("#experiment-filter", "churn")
    assert rows.evaluate_all("rows => rows.map(r => r.dataset.ref)") == ["churn/xgb"]
    page.select_option("#experiment-filter", "")
    page.fill("#tag-filter", "team=vision")
    assert rows.count() == 2  # fast and slow; the child run has tags of its own (none)
    page.fill("#tag-filter", "")
    page.click("th[data-key=point_count]")  # ascending: the fewest points first
    assert rows.first.get_attribute("data-ref") == "churn/xgb"
    not_blank(page, tmp_path, "runs")
    page.close()


def test_a_run_page_draws_each_metric_and_shows_the_image(browser, ui, tmp_path):
    page = open_page(browser, ui, "/run/mnist/fast")
    page.wait_for_selector(".chart[data-metric='val:loss'][data-points]")
    chart = page.locator(".chart[data-metric='val:loss']")
    assert chart.evaluate("d => [d.data.length, d.data[0].x.length]") == [1, 20]
    long = page.locator(".chart[data-metric='train:loss']")
    drawn, total = long.evaluate("d => [d.data[0].y.length, Number(d.dataset.total)]")
    assert total == LONG and drawn <= 4_000 and long.evaluate("d => Math.max(...d.data[0].y)") == 100.0
    assert page.locator(".chart[data-metric='val:loss'] .main-svg").count() >= 1  # plotly drew it
    assert "lr" in page.inner_text("#parameters") and "0.1" in page.inner_text("#parameters")
    assert page.locator("img.artifact").evaluate("img => img.naturalWidth") == 1
    assert "fast-fold-0" in page.inner_text("#children")
    page.fill("#smoothing", "0.9")
    page.dispatch_event("#smoothing", "input")
    smoothed = chart.evaluate("d => d.data[0].y[19]")
    assert smoothed > 1 / 20 + 0.1  # an average of earlier, higher losses
    page.wait_for_selector(".chart[data-chart='val-confusion'][data-kind]")
    heatmap = page.locator(".chart[data-chart='val-confusion']")
    assert heatmap.evaluate("d => [d.data[0].type, d.data[0].z]") == ["heatmap", [[1, 0, 0], [0, 1, 1], [0, 1, 2]]]
    assert page.locator(".chart[data-chart='val-roc']").evaluate("d => d.data.length") == 2  # the curve, chance
    not_blank(page, tmp_path, "run")
    page.close()


def test_a_table_is_previewed_a_page_at_a_time(browser, ui):
    page = open_page(browser, ui, "/run/mnist/fast")
    page.click("button.preview[data-table='top-items']")
    page.wait_for_selector("#table-preview[data-offset='0']")
    assert page.inner_text("#table-range") == "rows 1–50 of 1,000"
    first = page.locator("#table-preview tbody tr").first.inner_text().split()
    assert first == ["0", "item-0"]
    page.click("#table-next")
    page.wait_for_selector("#table-preview[data-offset='50']")
    assert page.locator("#table-preview tbody tr").first.inner_text().split() == ["50", "item-50"]
    assert page.locator("#table-preview tbody tr").count() == 50
    page.close()


def test_comparing_two_runs_overlays_them_and_marks_what_differs(browser, ui, tmp_path):
    page = open_page(browser, ui, "/")
    for ref in ("mnist/fast", "mnist/slow"):
        page.check(f"#runs tr[data-ref='{ref}'] input[type=checkbox]")
    page.click("#compare")
    page.wait_for_function("document.body.dataset.ready.startsWith('/compare/')")
    page.wait_for_selector(".chart[data-metric='val:loss'][data-points]")
    assert page.locator(".chart[data-metric='val:loss']").evaluate("d => d.data.length") == 2
    assert page.locator("tr[data-parameter=lr]").get_attribute("class") == "differs"
    assert page.locator("tr[data-parameter=layers]").get_attribute("class") == ""
    not_blank(page, tmp_path, "compare")
    page.close()


LIVE = """
import sys, time
import sagerun, sagerun.sync
session = sagerun.Session(backend="local", store=sys.argv[1], linger=0.01)
with sagerun.sync.Run("live", "training", session=session) as run:
    for step in range(200):
        run.log_metric("loss", 1 / (step + 1), step=step)
        if step == 20:
            run.flush()
            print("LOGGING", flush=True)
        time.sleep(0.02)
"""


def test_a_run_still_logging_updates_its_chart_within_two_seconds(browser, tmp_path):
    store = str(tmp_path / "live")
    writer = subprocess.Popen([sys.executable, "-c", LIVE, store], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "LOGGING"
        process, url = start_ui(store)
        try:
            page = open_page(browser, url, "/run/live/training")
            assert page.inner_text("#status") == "InProgress"
            page.wait_for_selector(".chart[data-metric='loss'][data-points]")
            first = int(page.locator(".chart[data-metric='loss']").get_attribute("data-points"))
            points = "Number(document.querySelector('.chart[data-metric=loss]').dataset.points)"
            page.wait_for_function(f"{points} > {first}", timeout=2_000)
            page.wait_for_function("document.getElementById('status').textContent === 'Completed'", timeout=15_000)
            page.wait_for_function(f"{points} === 200", timeout=3_000)
            page.close()
        finally:
            process.terminate()
            process.wait(10)
    finally:
        writer.wait(30)


def test_runs_that_live_in_sagemaker(session, moto_url, metrics_fake, browser):
    # moto keeps metric summaries only and answers BatchGetMetrics 404: the summaries come from moto
    # (as DescribeTrialComponent's, given the same points), the series from the recording fake.
    import boto3

    with sagerun.sync.Run("sm-ui", "remote", session=session, tags={"team": "vision"}) as run:
        run.log_parameters({"lr": 0.1})
        for step in range(30):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_table("top-items", {"user": list(range(120)), "item": [f"item-{i}" for i in range(120)]})
        run.log_confusion_matrix([0, 1, 1], [0, 1, 0], title="val-confusion")
        with run.child_run("fold-0") as child:
            child.log_metric("auc", 0.9, step=0)
    moto_metrics = boto3.client("sagemaker-metrics", endpoint_url=moto_url, region_name="us-east-1")
    for first in range(0, 30, 10):
        moto_metrics.batch_put_metrics(TrialComponentName=run.trial_component_name, MetricData=[
            {"MetricName": "loss", "Timestamp": time.time(), "Step": s, "Value": 1 / (s + 1)}
            for s in range(first, first + 10)])
    env = {**os.environ, "AWS_ENDPOINT_URL": moto_url, "AWS_ENDPOINT_URL_SAGEMAKER_METRICS": metrics_fake.url}
    process = subprocess.Popen([sys.executable, "-m", "sagerun", "ui", "--source", "sagemaker", "--experiment",
                                "sm-ui", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "SageMaker, experiment sm-ui" in line, process.stderr.read() if process.poll() is not None else line
        url = line.split(" on ", 1)[1].split()[0]
        runs = json.loads(get(url + "api/runs")[1])
        assert sorted((r["ref"], r["parent"]) for r in runs) == [
            ("sm-ui/remote", None), ("sm-ui/remote-fold-0", "sm-ui-remote")]
        shown = json.loads(get(url + "api/runs/sm-ui/remote")[1])
        assert shown["parameters"] == {"lr": 0.1} and shown["tags"]["team"] == "vision"
        assert shown["children"] == ["sm-ui/remote-fold-0"] and [m["name"] for m in shown["metrics"]] == ["loss"]
        series = json.loads(get(url + "api/runs/sm-ui/remote/metrics/loss")[1])
        assert series["steps"] == list(range(30)) and series["values"] == [1 / (s + 1) for s in range(30)]
        assert metrics_fake.reads == 1
        get(url + "api/runs/sm-ui/remote/metrics/loss")
        assert metrics_fake.reads == 1  # cached: a UI asking again does not call SageMaker again
        kinds = {a["name"]: a["kind"] for a in shown["artifacts"]["output"]}
        assert kinds == {"top-items": "Table (120 rows)", "val-confusion": "ConfusionMatrix"}
        page_of = json.loads(get(url + "api/runs/sm-ui/remote/tables/top-items?offset=100&limit=50")[1])
        assert page_of["row_count"] == 120 and [r[0] for r in page_of["rows"]] == list(range(100, 120))
        matrix = json.loads(get(url + "api/runs/sm-ui/remote/charts/val-confusion")[1])
        assert matrix["confusionMatrix"] == [[1, 0], [1, 1]]
        page = open_page(browser, url, "/run/sm-ui/remote")
        page.wait_for_selector(".chart[data-metric='loss'][data-points]")
        assert page.locator(".chart[data-metric='loss']").evaluate("d => d.data[0].x.length") == 30
        page.wait_for_selector(".chart[data-chart='val-confusion'][data-kind]")
        assert page.locator(".chart[data-chart='val-confusion']").evaluate("d => d.data[0].type") == "heatmap"
        page.click("button.preview[data-table='top-items']")
        page.wait_for_selector("#table-preview[data-offset='0']")
        assert page.inner_text("#table-range") == "rows 1–50 of 120"
        page.close()
    finally:
        process.terminate()
        process.wait(10)
