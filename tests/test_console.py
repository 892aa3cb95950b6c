"""Session(capture_console=True): the script's console, as the user finds it in the run's ``logs``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from sagerun._artifacts.storage import path_of_uri

SCRIPT = textwrap.dedent("""
    import sys
    import sagerun.sync

    with sagerun.sync.Run("console", "r1") as run:
        for epoch in range(3):
            print(f"epoch {epoch} loss {1 / (epoch + 1):.3f}")
        print("a warning of the script", file=sys.stderr)
        run.log_metric("loss", float("nan"), step=0)  # sagerun warns that it is not sent
    print("after the run")
""")


def run_script(tmp_path, **env):
    (tmp_path / "train.py").write_text(SCRIPT)
    environ = {**os.environ, "SAGERUN_BACKEND": "local", "SAGERUN_HOME": str(tmp_path / "store"), **env}
    return subprocess.run([sys.executable, "train.py"], cwd=tmp_path, env=environ, capture_output=True, text=True,
                          timeout=60, check=True)


def show(tmp_path):
    done = subprocess.run([sys.executable, "-m", "sagerun", "show", "console/r1", "--json", "--store",
                           str(tmp_path / "store")], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_console_is_kept_as_the_runs_logs_and_still_printed(tmp_path):
    done = run_script(tmp_path, SAGERUN_CAPTURE_CONSOLE="1")
    assert "epoch 2 loss 0.333" in done.stdout and "after the run" in done.stdout  # the terminal still shows it
    assert "a warning of the script" in done.stderr and "nan" in done.stderr.lower()
    logs = show(tmp_path)["artifacts"]["output"]["logs"]
    assert logs["media_type"] == "text/plain"
    path = path_of_uri(logs["value"])
    text = open(path).read()
    assert "epoch 0 loss 1.000\nepoch 1 loss 0.500\nepoch 2 loss 0.333\n" in text
    assert "a warning of the script" in text and "WARNING" in text and "loss" in text
    assert "after the run" not in text  # only while the run is open
    assert os.stat(path).st_mode & 0o077 == 0


def test_nothing_is_captured_unless_asked(tmp_path):
    run_script(tmp_path)
    assert "logs" not in show(tmp_path)["artifacts"]["output"]
