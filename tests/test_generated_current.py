"""The checked-in sync facade is what scripts/unasync.py writes from the async sources today."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path("scripts") / "unasync.py"


def check(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / SCRIPT), "--check"], capture_output=True, text=True,
                          timeout=60, cwd=root)


def test_the_generated_sync_facade_is_current():
    result = check(ROOT)
    assert result.returncode == 0, f"src/sagerun/_sync is stale: run `python scripts/unasync.py`\n{result.stderr}"


def test_check_fails_when_an_async_source_changes_and_writing_fixes_it(tmp_path):
    for part in (SCRIPT, Path("src/sagerun/_async"), Path("src/sagerun/_sync")):
        target = tmp_path / part
        target.parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / part, target)
    source = tmp_path / "src/sagerun/_async/run.py"
    source.write_text(source.read_text().replace("Queue one metric point", "Queue a single metric point"))

    stale = check(tmp_path)
    assert stale.returncode == 1
    assert "_sync/run.py" in stale.stderr and "Queue a single metric point" in stale.stderr

    subprocess.run([sys.executable, str(tmp_path / SCRIPT)], check=True, capture_output=True, timeout=60)
    assert check(tmp_path).returncode == 0
    assert "Queue a single metric point" in (tmp_path / "src/sagerun/_sync/run.py").read_text()
