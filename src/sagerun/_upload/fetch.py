"""Upload · spool files kept beyond a SageMaker job (in S3, by the run's close) taken into the
local spool, so that ``sagerun sync --from s3://…/spool/`` delivers them from any machine.

Each file is taken once: the spool remembers its URI and ETag, so running the command again, or
after an interruption, adds nothing twice.
"""

from __future__ import annotations

import contextlib

import anyio.to_thread
import orjson

from .._model.session import Session
from ..backends.aws import call_with_retries, open_client
from ..store.spool import Spool


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key prefix)`` of ``s3://bucket/prefix/``.

    Raises:
        ValueError: ``uri`` is not an ``s3://`` URI with a bucket.
    """
    if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise ValueError(f"--from must be an s3:// URI of kept spool files, as the run's close names it; got {uri!r}")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix


async def fetch_spool(session: Session, spool: Spool, uri: str) -> int:
    """Take the spool files under ``uri`` into ``spool``; return how many points were added.

    Raises:
        ValueError: ``uri`` is not an ``s3://`` URI, or a file under it is not a spool file.
        botocore.exceptions.ClientError: the objects could not be listed or read.
    """
    bucket, prefix = parse_s3_uri(uri)
    added = 0
    async with contextlib.AsyncExitStack() as stack:
        s3 = await open_client(stack, session, "s3")
        token: dict[str, str] = {}
        while True:
            page = await call_with_retries(session, s3.list_objects_v2, Bucket=bucket, Prefix=prefix, **token)
            for item in page.get("Contents") or ():
                key = item["Key"]
                if not key.endswith(".jsonl"):
                    continue
                answer = await call_with_retries(session, s3.get_object, Bucket=bucket, Key=key)
                async with answer["Body"] as body:
                    data = await body.read()
                rows = [orjson.loads(line) for line in data.splitlines() if line.strip()]
                source = f"s3://{bucket}/{key}#{item.get('ETag', '')}"
                added += await anyio.to_thread.run_sync(spool.import_rows, source, rows) or 0
            if not page.get("IsTruncated"):
                return added
            token = {"ContinuationToken": page["NextContinuationToken"]}
