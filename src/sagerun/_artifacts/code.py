"""Artifacts · a snapshot of the source folder (``log_code``), as a ``.tar.gz``, without what git ignores or secrets.

What is left out: whatever a ``.gitignore`` ignores (the one of each folder, for the paths below
it, matched by pathspec's gitignore rules), whatever ``.sagerunignore`` at the top ignores (same
syntax), the ``.git`` folder, and files that look like secrets whatever the ignore files say.
Inside a SageMaker job the job's own source archive (``sagemaker_submit_directory``, uploaded by
the SDK when the job was made) is recorded instead of uploading the code again.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tarfile
import tempfile

import pathspec

#: file names never archived: they hold keys and passwords more often than code
SECRETS = (".env", "*.pem", "id_rsa*", "credentials", "*.key")
DEFAULT_MAX_BYTES = 50 * 2**20
MEDIA_TYPE = "application/gzip"
#: where a SageMaker training container finds its hyperparameters, the submit directory among them
HYPERPARAMETERS = "/opt/ml/input/config/hyperparameters.json"


class CodeTooLargeError(ValueError):
    """The folder holds more than the size cap allows."""


def is_secret(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SECRETS)


def collect(root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """The files under ``root`` to archive, relative to it, in a stable order.

    Raises:
        ValueError: ``root`` is not a folder.
        CodeTooLargeError: they add up to more than ``max_bytes`` (the message names the largest).
    """
    if not os.path.isdir(root):
        raise ValueError(f"log_code(path={root!r}): not a folder")
    specs: list[tuple[str, pathspec.PathSpec]] = []
    top = os.path.join(root, ".sagerunignore")
    if os.path.isfile(top):
        specs.append(("", _spec(top)))
    kept: list[tuple[int, str]] = []
    for folder, dirs, files in os.walk(root):
        rel = os.path.relpath(folder, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        ignore = os.path.join(folder, ".gitignore")
        if os.path.isfile(ignore):
            specs.append((rel, _spec(ignore)))
        dirs[:] = sorted(d for d in dirs if d != ".git" and not _ignored(specs, rel + d + "/"))
        for name in sorted(files):
            path = rel + name
            if is_secret(name) or _ignored(specs, path) or not os.path.isfile(os.path.join(folder, name)):
                continue
            kept.append((os.path.getsize(os.path.join(folder, name)), path))
    total = sum(size for size, _ in kept)
    if total > max_bytes:
        largest = ", ".join(f"{path} ({size / 2**20:.1f} MiB)" for size, path in sorted(kept, reverse=True)[:3])
        raise CodeTooLargeError(f"log_code({root!r}) would archive {total / 2**20:.1f} MiB, over max_bytes "
                                f"({max_bytes / 2**20:.1f} MiB); the largest: {largest}. Ignore them in "
                                ".sagerunignore, or raise max_bytes")
    return [path for _, path in kept]


def archive(root: str, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """A temporary ``code.tar.gz`` of ``collect(root)``; the caller deletes it.

    Raises:
        ValueError, CodeTooLargeError: as ``collect``.
        OSError: a file could not be read, or the archive written.
    """
    files = collect(root, max_bytes)
    folder = tempfile.mkdtemp(prefix="sagerun-code-")
    path = os.path.join(folder, "code.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for name in files:
            tar.add(os.path.join(root, name), arcname=name, recursive=False)
    return path


def submitted_source(hyperparameters: str | None = None) -> str | None:
    """The S3 URI of the job's source archive, inside a SageMaker training job that has one."""
    uri = os.environ.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if not uri:
        path = hyperparameters or os.environ.get("SAGERUN_HYPERPARAMETERS") or HYPERPARAMETERS
        try:
            with open(path, encoding="utf-8") as file:
                uri = json.load(file).get("sagemaker_submit_directory")
        except (OSError, ValueError, AttributeError):
            return None
    if isinstance(uri, str):
        uri = uri.strip('"')  # the SDK stores hyperparameters JSON-encoded: '"s3://..."'
    return uri if isinstance(uri, str) and uri.startswith("s3://") else None


def _spec(path: str) -> pathspec.PathSpec:
    with open(path, encoding="utf-8", errors="replace") as file:
        return pathspec.GitIgnoreSpec.from_lines(file)


def _ignored(specs: list[tuple[str, pathspec.PathSpec]], path: str) -> bool:
    return any(path.startswith(base) and spec.match_file(path[len(base):]) for base, spec in specs)
