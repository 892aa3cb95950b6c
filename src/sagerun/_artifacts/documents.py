"""Artifacts · reading stored chart and table documents back, from the local store's folder or from S3.

For previews: a table's first rows are read by reading the first lines of its document and
stopping (locally by reading the file line by line, from S3 by streaming the object and closing the
stream once enough lines arrived), so a preview of a large table costs what the preview shows.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from typing import Any, Iterator

from .._model.errors import SagerunError
from .._model.session import Session
from .storage import local_folder, path_of_uri


class ArtifactUnreadableError(SagerunError):
    """An artifact's document could not be read where its value says it is."""


def s3_location(uri: str) -> tuple[str, str] | None:
    """``(bucket, key)`` of an ``s3://`` URI, else ``None``."""
    parsed = urllib.parse.urlsplit(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        return None
    return parsed.netloc, urllib.parse.unquote(parsed.path.lstrip("/"))


def local_file(uri: str, store_path: str, trial_component_name: str) -> str | None:
    """The local file of a ``file://`` artifact value (``None`` for another scheme); when the store was
    moved or copied since, the file of the same name in this store's folder of the run."""
    path = path_of_uri(uri)
    if path is None or os.path.exists(path):
        return path
    moved = os.path.join(local_folder(store_path, trial_component_name), os.path.basename(path))
    return moved if os.path.exists(moved) else path


@contextlib.contextmanager
def open_lines(uri: str, store_path: str, trial_component_name: str, *, session: Session | None = None,
               max_lines: int | None = None) -> Iterator[Any]:
    """The lines of the document at ``uri`` (``file://`` or ``s3://``), as an iterable of bytes read
    as it is consumed; from S3, at most ``max_lines`` lines are fetched (all when ``None``). For
    synchronous code (the CLI): an S3 read runs its own event loop.

    Raises:
        ArtifactUnreadableError: the value is not a file or S3 URI, or the document cannot be read.
    """
    path = local_file(uri, store_path, trial_component_name)
    if path is not None:
        try:
            file = open(path, "rb")
        except OSError as exc:
            raise ArtifactUnreadableError(f"cannot read {path}: {exc.strerror or exc}. The local store's "
                                          "artifact files are kept in its artifacts/ folder") from exc
        with file:
            yield (line.rstrip(b"\r\n") for line in file)
        return
    location = s3_location(uri)
    if location is None:
        raise ArtifactUnreadableError(f"the artifact's value {uri!r} is neither a file:// nor an s3:// URI: "
                                      "there is no document to read")
    import anyio

    session = session or Session.from_env(store=store_path)
    lines = anyio.run(_s3_lines, session, *location, max_lines)
    yield iter(lines)


async def _s3_lines(session: Session, bucket: str, key: str, max_lines: int | None) -> list[bytes]:
    import botocore.exceptions

    from .clients import AwsClients
    from .tables import iter_lines

    clients = AwsClients(session)
    try:
        s3 = await clients.get("s3")
        try:
            answer = await s3.get_object(Bucket=bucket, Key=key)
        except botocore.exceptions.ClientError as exc:
            raise ArtifactUnreadableError(f"cannot read s3://{bucket}/{key}: {exc} (needs s3:GetObject)") from exc
        chunks: list[bytes] = []
        newlines = 0
        stream = answer["Body"]
        async with stream:  # closes the connection, also when the loop stops early
            # Stop once the lines wanted are in: the rest of a large table is never transferred.
            async for chunk in stream.iter_chunks(1 << 16):
                chunks.append(chunk)
                newlines += chunk.count(b"\n")
                if max_lines is not None and newlines >= max_lines:
                    break
        lines = list(iter_lines(chunks))
        return lines if max_lines is None else lines[:max_lines]
    except (botocore.exceptions.BotoCoreError, OSError) as exc:
        raise ArtifactUnreadableError(f"cannot read s3://{bucket}/{key}: {exc}") from exc
    finally:
        await clients.aclose()


def read_document(uri: str, store_path: str, trial_component_name: str, *, session: Session | None = None) -> bytes:
    """The whole document at ``uri``.

    Raises:
        ArtifactUnreadableError: as ``open_lines``.
    """
    with open_lines(uri, store_path, trial_component_name, session=session) as lines:
        return b"\n".join(lines)
