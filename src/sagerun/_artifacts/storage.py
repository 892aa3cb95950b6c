"""Artifacts · where artifact bytes go: S3 for a run in SageMaker (``s3.py``), the local store's folder otherwise.

Both keep a run's files under one folder named after its trial component: in S3
``s3://<bucket>/<prefix>/<trial component>/<file name>`` (the SageMaker SDK's layout, prefix
``trial-component-artifacts`` by default), locally ``<store>/artifacts/<trial component>/<file name>``,
recorded as a ``file://`` URI. Blocking file work (reading, copying, writing) runs in worker
threads, so that metric delivery on the event loop never waits for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import AsyncIterator, Protocol

import anyio.to_thread

DEFAULT_PREFIX = "trial-component-artifacts"
GZIP = "application/gzip"
LOCAL_FOLDER = "artifacts"
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]+")


@dataclasses.dataclass(frozen=True)
class StoredObject:
    """Where bytes were stored: the URI recorded as the artifact's value, and the S3 ETag if any."""

    uri: str
    etag: str | None = None


class Storage(Protocol):
    """Keeps the files of one run."""

    remote: bool
    """True for S3: lineage can point at the objects."""

    async def put_file(self, path: str, file_name: str, media_type: str | None) -> StoredObject:
        """Store the file at ``path`` as ``file_name``.

        Raises:
            BackendError: it could not be stored (the message says where and why).
        """

    async def put_bytes(self, data: bytes, file_name: str, media_type: str | None) -> StoredObject:
        """Store ``data`` as ``file_name``.

        Raises:
            BackendError: it could not be stored.
        """


def file_name(name: str, extension: str = "") -> str:
    """A file name made of artifact name ``name``: path separators and control characters become
    ``-`` (a title such as ``"val/roc"`` must not make a folder), then ``extension`` is added."""
    cleaned = _UNSAFE.sub("-", name).strip(" .") or "artifact"
    return cleaned + extension


@contextlib.asynccontextmanager
async def archived(folder: str, base: str) -> AsyncIterator[str]:
    """A temporary ``<base>.tar.gz`` of ``folder``'s content, made in a worker thread, deleted after."""
    temporary = await anyio.to_thread.run_sync(lambda: tempfile.mkdtemp(prefix="sagerun-folder-"))
    try:
        archive = os.path.join(temporary, f"{file_name(base)}.tar.gz")
        await anyio.to_thread.run_sync(_archive, folder, archive)
        yield archive
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, temporary, True)


def _archive(folder: str, path: str) -> None:
    # The folder's content at the archive's top, as SageMaker unpacks model.tar.gz into /opt/ml/model.
    with tarfile.open(path, "w:gz") as archive:
        for entry in sorted(os.listdir(folder)):
            archive.add(os.path.join(folder, entry), arcname=entry)


def readable_file(file_path: object) -> tuple[str, int]:
    """The absolute path and size of ``file_path``, checked to be a regular file this process can read.

    Raises:
        TypeError: ``file_path`` is not a str or path.
        ValueError: it does not exist, is not a regular file, or cannot be opened (as the SageMaker
            SDK, which raises ``ValueError`` for a missing file).
    """
    if not isinstance(file_path, (str, os.PathLike)):
        raise TypeError(f"file_path must be a str or path; got {type(file_path).__name__}")
    path = os.path.abspath(os.path.expanduser(os.fspath(file_path)))
    if not os.path.exists(path):
        raise ValueError(f"{file_path} does not exist: log_file needs the path of an existing file")
    if not os.path.isfile(path):
        raise ValueError(f"{file_path} is not a regular file or a folder: log_file stores one of those")
    try:
        with open(path, "rb") as file:  # opening proves it readable: access() is wrong for root and ACLs
            size = os.fstat(file.fileno()).st_size
    except OSError as exc:
        raise ValueError(f"{file_path} cannot be read: {exc.strerror or exc}") from exc
    return path, size


def local_folder(store_path: str, trial_component_name: str) -> str:
    return os.path.join(store_path, LOCAL_FOLDER, file_name(trial_component_name))


def path_of_uri(uri: str) -> str | None:
    """The local path a ``file://`` URI names, else ``None``."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "file":
        return None
    return urllib.request.url2pathname(parsed.path)


class LocalStorage:
    """Files of a run of the local store, in ``<store>/artifacts/<trial component>/``."""

    remote = False

    def __init__(self, store_path: str, trial_component_name: str) -> None:
        self.folder = local_folder(store_path, trial_component_name)

    async def put_file(self, path: str, file_name: str, media_type: str | None) -> StoredObject:
        return await anyio.to_thread.run_sync(self._write, file_name, path, None)

    async def put_bytes(self, data: bytes, file_name: str, media_type: str | None) -> StoredObject:
        return await anyio.to_thread.run_sync(self._write, file_name, None, data)

    def _write(self, name: str, source: str | None, data: bytes | None) -> StoredObject:
        from .._model.errors import BackendError

        target = os.path.join(self.folder, name)
        try:
            # The store's folder is private (0700), and so is this one: artifacts are as private as runs.
            # makedirs gives the folders it creates on the way the umask's mode, not 0700: set each.
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            for folder in (os.path.dirname(self.folder), self.folder):
                os.chmod(folder, 0o700)
            # Written beside the target, then renamed: a reader never sees half a file, and a file
            # logged again replaces the old one whole.
            fd, temporary = tempfile.mkstemp(dir=self.folder, prefix=".partial-")
            try:
                with os.fdopen(fd, "wb") as out:
                    if source is not None:
                        with open(source, "rb") as file:
                            shutil.copyfileobj(file, out, 1 << 20)
                    else:
                        out.write(data or b"")
                os.replace(temporary, target)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temporary)
                raise
        except OSError as exc:
            raise BackendError(f"could not store artifact file {name!r} in the local store folder {self.folder}: "
                               f"{exc}. Check that it is writable and the disk has room") from exc
        return StoredObject(Path(target).resolve().as_uri())
