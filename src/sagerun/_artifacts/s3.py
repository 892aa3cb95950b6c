"""Artifacts · artifact bytes to S3 through aioboto3: the bucket, single and multipart uploads, the ETag.

The bucket is the one given, else the SageMaker default bucket ``sagemaker-<region>-<account id>``
(the account from STS GetCallerIdentity), created if missing, as the SageMaker SDK does. Files up to
``multipart_threshold`` go in one PutObject; larger ones in parts of ``part_size`` with at most
``max_concurrency`` parts in flight (and so in memory). Each request is retried under sagerun's
policy; a multipart upload that fails is aborted, so that no orphaned parts are billed.

Encryption and bucket ownership come from the session, as all configuration does: its
``artifact_sse`` (``AES256`` or ``aws:kms``), ``artifact_kms_key_id`` (implies ``aws:kms``) and
``artifact_bucket_owner`` (the account that must own the bucket), which ``Session.from_env`` reads
from ``SAGERUN_ARTIFACT_SSE``, ``SAGERUN_ARTIFACT_KMS_KEY_ID`` and ``SAGERUN_ARTIFACT_BUCKET_OWNER``.
A session without those fields means none of them. The default bucket is always expected to be
owned by the caller's own account, so that a bucket of that name made by someone else is never
written to.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
from typing import Any, Awaitable, Callable

import anyio
import anyio.to_thread
import botocore.exceptions

from .._model.errors import BackendError, TransportError
from .._model.session import Session
from ..backends.aws import call_with_retries
from .clients import AwsClients
from .storage import DEFAULT_PREFIX, StoredObject

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup  # anyio's dependency there

logger = logging.getLogger("sagerun")
MiB = 1024 * 1024
_MIN_PART = 5 * MiB  # S3's smallest part but the last
_MAX_PARTS = 10_000


@dataclasses.dataclass(frozen=True)
class S3Options:
    """How artifact objects are written."""

    server_side_encryption: str | None = None
    """``"AES256"`` (SSE-S3) or ``"aws:kms"`` (SSE-KMS); ``None``: the bucket's default."""
    kms_key_id: str | None = None
    """The KMS key of SSE-KMS; the account's AWS managed key when ``None``."""
    expected_bucket_owner: str | None = None
    """The account id that must own the bucket; S3 refuses the request otherwise."""
    multipart_threshold: int = 8 * MiB
    part_size: int = 8 * MiB
    max_concurrency: int = 4

    def __post_init__(self) -> None:
        if self.kms_key_id and self.server_side_encryption is None:
            object.__setattr__(self, "server_side_encryption", "aws:kms")
        if self.server_side_encryption not in (None, "AES256", "aws:kms", "aws:kms:dsse"):
            raise ValueError("artifact server-side encryption must be 'AES256', 'aws:kms' or 'aws:kms:dsse'; got "
                             f"{self.server_side_encryption!r}")
        if self.part_size < _MIN_PART:
            raise ValueError(f"part_size must be at least {_MIN_PART} bytes (S3's minimum); got {self.part_size}")
        if self.max_concurrency < 1 or self.multipart_threshold < 1:
            raise ValueError("max_concurrency and multipart_threshold must be positive")

    @classmethod
    def from_session(cls, session: Session) -> S3Options:
        """Options from the session's ``artifact_sse``, ``artifact_kms_key_id`` and
        ``artifact_bucket_owner``, where it has them.

        Raises:
            ValueError: ``artifact_sse`` is not an encryption S3 knows.
        """
        return cls(server_side_encryption=session.artifact_sse,
                   kms_key_id=session.artifact_kms_key_id,
                   expected_bucket_owner=session.artifact_bucket_owner)


class S3Storage:
    """Files of one run in ``s3://<bucket>/<prefix>/<trial component>/``."""

    remote = True

    def __init__(self, clients: AwsClients, trial_component_name: str, *, bucket: str | None = None,
                 prefix: str | None = None, options: S3Options | None = None) -> None:
        self.clients = clients
        self.session: Session = clients.session
        self.trial_component_name = trial_component_name
        self.prefix = (prefix if prefix is not None else DEFAULT_PREFIX).strip("/")
        self.options = options or S3Options.from_session(clients.session)
        self._bucket = bucket
        self._owner = self.options.expected_bucket_owner
        self._bucket_lock = anyio.Lock()

    def key(self, file_name: str) -> str:
        return "/".join(part for part in (self.prefix, self.trial_component_name, file_name) if part)

    async def bucket(self) -> str:
        """The bucket written to; the default one is found (and created if missing) on first use.

        Raises:
            BackendError: the account could not be found, or the default bucket could not be made.
        """
        if self._bucket is not None:
            return self._bucket
        async with self._bucket_lock:
            if self._bucket is None:
                self._bucket = await self._default_bucket()
        return self._bucket

    async def _default_bucket(self) -> str:
        s3, sts = await self.clients.get("s3"), await self.clients.get("sts")
        try:
            account = (await call_with_retries(self.session, sts.get_caller_identity))["Account"]
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise BackendError(f"could not find the AWS account for the default artifact bucket: {exc}. Pass "
                               "artifact_bucket=..., or allow sts:GetCallerIdentity") from exc
        region = s3.meta.region_name
        name = f"sagemaker-{region}-{account}"
        self._owner = self._owner or account
        try:
            await call_with_retries(self.session, s3.head_bucket, Bucket=name, ExpectedBucketOwner=self._owner)
            return name
        except botocore.exceptions.ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 403:
                raise BackendError(f"the default artifact bucket {name} exists but belongs to another account or is "
                                   "not readable: pass artifact_bucket=... (a bucket of yours)") from exc
            if status != 404:
                raise BackendError(f"could not check the default artifact bucket {name}: {exc}") from exc
        except TransportError as exc:
            raise BackendError(f"could not check the default artifact bucket {name}: {exc}") from exc
        kwargs: dict[str, Any] = {"Bucket": name}
        if region != "us-east-1":  # us-east-1 refuses a location constraint naming itself
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await call_with_retries(self.session, s3.create_bucket, **kwargs)
            logger.info("sagerun: created the artifact bucket s3://%s", name)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code != "BucketAlreadyOwnedByYou":  # another process of ours made it first
                raise BackendError(f"could not create the default artifact bucket {name}: {exc}. Pass "
                                   "artifact_bucket=..., or allow s3:CreateBucket") from exc
        except TransportError as exc:
            raise BackendError(f"could not create the default artifact bucket {name}: {exc}") from exc
        return name

    async def put_file(self, path: str, file_name: str, media_type: str | None) -> StoredObject:
        size = (await anyio.to_thread.run_sync(os.stat, path)).st_size
        if size <= self.options.multipart_threshold:
            data = await anyio.to_thread.run_sync(_read_at, path, 0, size)
            return await self.put_bytes(data, file_name, media_type)
        return await self._upload(file_name, media_type, size, lambda offset, length: anyio.to_thread.run_sync(
            _read_at, path, offset, length), source=path)

    async def put_bytes(self, data: bytes, file_name: str, media_type: str | None) -> StoredObject:
        if len(data) > self.options.multipart_threshold:
            view = memoryview(data)

            async def part(offset: int, length: int) -> bytes:
                return bytes(view[offset:offset + length])

            return await self._upload(file_name, media_type, len(data), part, source=file_name)
        bucket = await self.bucket()
        key = self.key(file_name)
        s3 = await self.clients.get("s3")
        try:
            await call_with_retries(self.session, s3.put_object, Bucket=bucket, Key=key, Body=data,
                                    **self._object_args(media_type))
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise self._error("upload", bucket, key, exc) from exc
        return await self._stored(bucket, key)

    async def _upload(self, file_name: str, media_type: str | None, size: int,
                      read: Callable[[int, int], Awaitable[bytes]], *, source: str) -> StoredObject:
        """A multipart upload of ``size`` bytes that ``read(offset, length)`` gives."""
        bucket = await self.bucket()
        key = self.key(file_name)
        s3 = await self.clients.get("s3")
        # Parts grow past part_size only for files over 10,000 parts (80 GB at 8 MiB): S3's part limit.
        part_size = max(self.options.part_size, -(-size // _MAX_PARTS))
        owner = self._owner_args()
        try:
            upload_id = (await call_with_retries(self.session, s3.create_multipart_upload, Bucket=bucket, Key=key,
                                                 **self._object_args(media_type)))["UploadId"]
        except (botocore.exceptions.ClientError, TransportError) as exc:
            raise self._error("start the multipart upload of", bucket, key, exc) from exc
        etags: dict[int, str] = {}
        limiter = anyio.CapacityLimiter(self.options.max_concurrency)

        async def send(number: int, offset: int) -> None:
            # Read inside the limiter: at most max_concurrency parts are ever in memory.
            async with limiter:
                body = await read(offset, min(part_size, size - offset))
                answer = await call_with_retries(self.session, s3.upload_part, Bucket=bucket, Key=key,
                                                 UploadId=upload_id, PartNumber=number, Body=body, **owner)
                etags[number] = answer["ETag"]

        try:
            async with anyio.create_task_group() as group:
                for number, offset in enumerate(range(0, size, part_size), start=1):
                    group.start_soon(send, number, offset)
            parts = [{"PartNumber": n, "ETag": etags[n]} for n in sorted(etags)]
            await call_with_retries(self.session, s3.complete_multipart_upload, Bucket=bucket, Key=key,
                                    UploadId=upload_id, MultipartUpload={"Parts": parts}, **owner)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                try:
                    await s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id, **owner)
                except Exception as abort_error:
                    logger.warning("sagerun: could not abort the multipart upload of s3://%s/%s (%s): its parts "
                                   "stay billed until a lifecycle rule removes them", bucket, key, abort_error)
            failure = _first(exc)  # a part's failure comes wrapped in the task group's exception group
            if isinstance(failure, (botocore.exceptions.ClientError, TransportError)):
                raise self._error("upload", bucket, key, failure) from failure
            raise
        logger.info("sagerun: uploaded %s to s3://%s/%s in %d parts", source, bucket, key, len(etags))
        return await self._stored(bucket, key)

    async def _stored(self, bucket: str, key: str) -> StoredObject:
        """The object's URI and its ETag from HeadObject (as the SageMaker SDK; ``None`` without read access)."""
        s3 = await self.clients.get("s3")
        etag = None
        try:
            etag = (await call_with_retries(self.session, s3.head_object, Bucket=bucket, Key=key,
                                            **self._owner_args()))["ETag"]
        except (botocore.exceptions.ClientError, TransportError) as exc:
            logger.info("sagerun: no ETag for s3://%s/%s (s3:GetObject needed to read it): %s", bucket, key, exc)
        return StoredObject(f"s3://{bucket}/{key}", etag)

    def _owner_args(self) -> dict[str, Any]:
        return {"ExpectedBucketOwner": self._owner} if self._owner else {}

    def _object_args(self, media_type: str | None) -> dict[str, Any]:
        args = self._owner_args()
        if media_type:
            args["ContentType"] = media_type
        if self.options.server_side_encryption:
            args["ServerSideEncryption"] = self.options.server_side_encryption
        if self.options.kms_key_id:
            args["SSEKMSKeyId"] = self.options.kms_key_id
        return args

    @staticmethod
    def _error(action: str, bucket: str, key: str, exc: BaseException) -> BackendError:
        return BackendError(f"could not {action} s3://{bucket}/{key}: {exc}. Check the bucket's region and the "
                            "IAM permissions s3:PutObject and s3:GetObject (and kms:GenerateDataKey with SSE-KMS)")


def _first(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _read_at(path: str, offset: int, length: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(offset)
        return file.read(length)
