"""Security: credentials and session tokens never reach sagerun's logs, its exception messages, the
spool or the local store; the store is private to its owner; nothing read back is evaluated.

Known fake secrets are put in the environment, every path that writes or raises is driven (faults,
refused items, an endpoint down for good, the control plane failing at enter and at exit, the CLI at
its most verbose), then everything written is searched for them.
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import os
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

import sagerun
import sagerun.sync
from test_reliability import SwitchProxy, cli_env, free_port, log_range

ACCESS_KEY = "AKIASAGERUNFAKEKEY42"
SECRET_KEY = "sagerunFakeSecret/K7MDENG+bPxRfiCYzzz42"
SESSION_TOKEN = "FwoGZXIvYXdzSAGERUNFAKESESSIONTOKEN//0123456789abcdefZZZ42"
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
# What a signature or a pre-signed URL would leave behind if a request were written out.
SIGNATURE_MARKS = ("Signature=", "X-Amz-Signature", "X-Amz-Credential", "x-amz-security-token")


@pytest.fixture
def fake_secrets(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)


def leaks(text: str) -> list[str]:
    found = [s for s in SECRETS if s in text]
    found += [m for m in SIGNATURE_MARKS if m.lower() in text.lower()]
    return found


def files_under(root: str) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


def _exception_text(exc: BaseException) -> str:
    parts = []
    while exc is not None:
        parts += [str(exc), repr(exc)]
        exc = exc.__cause__ or exc.__context__
    return "\n".join(parts)


async def test_credentials_never_reach_logs_exceptions_the_spool_or_the_store(
        fake_secrets, session, metrics_fake, moto_url, tmp_path, caplog):
    store = str(tmp_path / "store")
    secret_session = dataclasses.replace(session, store=store, close_timeout=1.0, retry_deadline=1.0)
    raised: list[str] = []
    with caplog.at_level(logging.DEBUG, logger="sagerun"):
        # Throttling, server errors, resets and refused items: retries, warnings and the spool.
        metrics_fake.configure(throttle_rate=0.2, error_500_rate=0.2, reset_rate=0.1, seed=4,
                               item_error_rates={"VALIDATION_ERROR": 0.05, "INTERNAL_ERROR": 0.05})
        async with sagerun.Run("sec", "faults", session=secret_session) as run:
            await log_range(run, 300)
        # The endpoint down for good: everything goes to the spool.
        metrics_fake.configure(down=True)
        async with sagerun.Run("sec", "down", session=secret_session) as run:
            await log_range(run, 100)
        metrics_fake.reset()
        # The control plane failing at exit, then at enter.
        with SwitchProxy(moto_url) as proxy:
            failing = dataclasses.replace(secret_session, endpoint_url=proxy.url, request_timeout=0.5,
                                          metrics_endpoint_url=metrics_fake.url)
            async with sagerun.Run("sec", "exit", session=failing) as run:
                run.log_parameter("password-like", "not-a-secret")
                proxy.set("down")
        nowhere = dataclasses.replace(secret_session, endpoint_url=f"http://127.0.0.1:{free_port()}",
                                      request_timeout=0.5)
        for attempt in (nowhere, dataclasses.replace(nowhere, metrics_client="botocore")):
            try:
                async with sagerun.Run("sec", "enter", session=attempt):
                    pass
            except sagerun.BackendError as exc:
                raised.append(_exception_text(exc))
        # A run that raises inside its block, with the message saved as its status.
        with pytest.raises(RuntimeError):
            async with sagerun.Run("sec", "boom", session=secret_session):
                raise RuntimeError("boom")
    assert len(raised) == 2, "the control plane at an unreachable port must fail the enter"
    records = [r for r in caplog.records if r.name.startswith("sagerun")]
    assert any(r.levelno == logging.DEBUG for r in records) and any("spool" in r.getMessage() for r in records)
    logged = "\n".join(r.getMessage() + "\n" + (r.exc_text or "") for r in records)
    assert leaks(logged) == []
    assert leaks("\n".join(raised)) == []
    written = files_under(store)
    assert any(p.name == "sagerun.db" for p in written)
    for path in written:
        assert leaks(path.read_bytes().decode("latin-1")) == [], path


def test_the_cli_at_its_most_verbose_prints_no_credentials(fake_secrets, moto_url, metrics_fake, tmp_path):
    store = str(tmp_path / "store")
    from sagerun.store import Spool
    import time

    async def local_run() -> None:  # pushed by `sync --all-local`: control calls through botocore too
        async with sagerun.Run("sec", "cli", session=sagerun.Session(backend="local", store=store)) as run:
            run.log_parameter("lr", 0.1)
            await run.log_metric("acc", 0.5, step=0)

    anyio.run(local_run)
    with Spool(store) as spool:
        spool.add("sec-cli", [("loss", 1.0, i, time.time()) for i in range(30)], "endpoint down")
    metrics_fake.configure(fail_next={"throttle": 2, "500": 1})
    done = subprocess.run([sys.executable, "-m", "sagerun", "-vv", "sync", "--all-local", "--store", store],
                          env=cli_env(moto_url, metrics_fake.url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(metrics_fake.points) == 31
    # botocore's own DEBUG log prints the canonical request and the headers: token and access key id.
    assert [s for s in SECRETS if s in done.stdout + done.stderr] == [], "`sagerun -vv` printed credentials"


# -- permissions -----------------------------------------------------------------------------------


def _modes(root: str) -> dict[str, str]:
    out = {}
    for path in [Path(root), *Path(root).rglob("*")]:
        out[str(path.relative_to(root))] = oct(stat.S_IMODE(path.stat().st_mode))
    return out


@pytest.fixture
def open_umask():
    """The most permissive umask, so that only sagerun's own modes decide."""
    old = os.umask(0)
    yield
    os.umask(old)


async def test_the_spool_and_the_store_are_private_to_their_owner(open_umask, session, metrics_fake, tmp_path):
    store = str(tmp_path / "deep" / "store")
    metrics_fake.configure(down=True)
    async with sagerun.Run("perm", "spooled", session=dataclasses.replace(session, store=store, close_timeout=0.3)) as run:
        await log_range(run, 20)
    async with sagerun.Run("perm", "local", session=sagerun.Session(backend="local", store=store)) as run:
        run.log_parameter("lr", 0.1)
        await log_range(run, 20)
    modes = _modes(store)
    assert "sagerun.db" in modes
    wrong = {p: m for p, m in modes.items() if m != ("0o700" if os.path.isdir(os.path.join(store, p)) else "0o600")}
    assert wrong == {}


async def test_artifact_files_in_the_local_store_are_private(open_umask, tmp_path):
    store = str(tmp_path / "store")
    source = tmp_path / "model.txt"
    source.write_text("weights")
    async with sagerun.Run("perm", "files", session=sagerun.Session(backend="local", store=store)) as run:
        await run.log_file(str(source))
        await run.log_table("table", {"a": [1, 2]})
    modes = _modes(store)
    assert any(p.endswith("model.txt") for p in modes)
    wrong = {p: m for p, m in modes.items() if m != ("0o700" if os.path.isdir(os.path.join(store, p)) else "0o600")}
    assert wrong == {}


# -- nothing read back is evaluated ----------------------------------------------------------------

_FORBIDDEN_MODULES = {"pickle", "cPickle", "_pickle", "marshal", "shelve", "dill", "cloudpickle", "joblib"}
_FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
_FORBIDDEN_METHODS = {"read_pickle", "unsafe_load", "full_load"}


def test_no_code_path_evaluates_or_unpickles_data():
    """An AST scan of every module of sagerun: no pickle-like module imported, no eval/exec/compile, no
    ``allow_pickle=True`` and no ``yaml.load``. Stored data is read as SQLite values, JSON (orjson) and
    raw little-endian arrays (``numpy.frombuffer``)."""
    root = Path(sagerun.__file__).parent
    problems = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            where = f"{path.relative_to(root)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, ast.Import):
                problems += [f"{where} imports {a.name}" for a in node.names if a.name.split(".")[0] in _FORBIDDEN_MODULES]
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in _FORBIDDEN_MODULES:
                problems.append(f"{where} imports from {node.module}")
            elif isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Name) and func.id in _FORBIDDEN_BUILTINS:
                    problems.append(f"{where} calls {func.id}")
                if isinstance(func, ast.Attribute) and func.attr in _FORBIDDEN_METHODS:
                    problems.append(f"{where} calls {func.attr}")
                if isinstance(func, ast.Attribute) and func.attr == "load" and getattr(func.value, "id", "") in ("yaml", "np", "numpy"):
                    problems.append(f"{where} calls {func.value.id}.load")  # type: ignore[attr-defined]
                for keyword in node.keywords:
                    if keyword.arg == "allow_pickle" and not (isinstance(keyword.value, ast.Constant)
                                                              and keyword.value.value is False):
                        problems.append(f"{where} passes allow_pickle")
    assert problems == []
    # The scan sees what it looks for: a module that unpickles is caught.
    probe = ast.parse("import pickle\npickle.loads(b'')\neval('1')")
    assert any(isinstance(n, ast.Import) and n.names[0].name == "pickle" for n in ast.walk(probe))
