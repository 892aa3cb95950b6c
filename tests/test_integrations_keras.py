"""Keras 3 on the JAX backend with ``SagerunCallback`` (the cases are in ``keras_cases.py``).

They run in a pytest of their own: JAX starts threads when it is imported, and a process that
forks after that may deadlock (JAX warns so), while other tests of this suite fork on purpose.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

# Looked up, not imported: importing Keras here would start JAX's threads in this process.
pytestmark = pytest.mark.skipif(not (importlib.util.find_spec("keras") and importlib.util.find_spec("jax")),
                                reason="Keras or JAX is not installed")

HERE = Path(__file__).resolve().parent


def test_the_keras_cases_pass_in_a_process_of_their_own(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:warnings",
                           str(HERE / "keras_cases.py"), "--basetemp", str(tmp_path / "cases")],
                          cwd=HERE.parent, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert " passed" in done.stdout and "failed" not in done.stdout.splitlines()[-1]
