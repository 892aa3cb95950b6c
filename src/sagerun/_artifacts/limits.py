"""Artifacts · what SageMaker accepts as a trial component artifact, checked at the caller's line.

A run holds at most 30 input and 30 output artifacts, as the SageMaker SDK enforces (the API's own
map allows 60; the SDK's limit is the one users know). Names are at most 128 characters, values
2048, and a media type must match the API's pattern ``type/subtype`` of word characters, hyphens
and plus signs, at most 64 characters: ``application/vnd.ms-excel`` (a dot) is refused by
UpdateTrialComponent, which would fail the run's save at exit, so it is refused here instead.
"""

from __future__ import annotations

import collections
import contextlib
import mimetypes
import re
from typing import Iterator

from .._model.records import Artifact, RunRecord

MAX_ARTIFACTS = 30
MAX_NAME = 128
MAX_VALUE = 2048
MAX_MEDIA_TYPE = 64
_MEDIA_TYPE = re.compile(r"[-\w]+/[-\w+]+")


def check_artifact(name: object, value: object, media_type: object) -> None:
    """Check one artifact as UpdateTrialComponent will.

    Raises:
        TypeError: ``name`` or ``value`` is not a str, or ``media_type`` neither a str nor ``None``.
        ValueError: one of them is empty, too long, or not of the API's form (the message says which).
    """
    if not isinstance(name, str):
        raise TypeError(f"artifact name must be a str; got {type(name).__name__}")
    if not 0 < len(name) <= MAX_NAME or not name.isprintable():
        raise ValueError(f"artifact name must be 1 to {MAX_NAME} printable characters; got {name!r}")
    if not isinstance(value, str):
        raise TypeError(f"artifact {name!r}: value must be a str (a URI, a path or text); got {type(value).__name__}")
    if len(value) > MAX_VALUE:
        raise ValueError(f"artifact {name!r}: value must be at most {MAX_VALUE} characters; got {len(value)}")
    if media_type is None:
        return
    if not isinstance(media_type, str):
        raise TypeError(f"artifact {name!r}: media_type must be a str or None; got {type(media_type).__name__}")
    if not valid_media_type(media_type):
        raise ValueError(f"artifact {name!r}: media_type must look like 'type/subtype' (letters, digits, '_', '-', "
                         f"'+'; at most {MAX_MEDIA_TYPE} characters) as SageMaker requires; got {media_type!r}")


def valid_media_type(media_type: str) -> bool:
    return len(media_type) <= MAX_MEDIA_TYPE and _MEDIA_TYPE.fullmatch(media_type) is not None


def guess_media_type(path: str) -> str | None:
    """The media type of ``path`` from its extension, as the SageMaker SDK guesses it, or ``None`` when
    there is none or SageMaker would refuse the one guessed."""
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed if guessed is not None and valid_media_type(guessed) else None


class ArtifactSlots:
    """Keeps a run within 30 input and 30 output artifacts, counting uploads still in progress.

    A name already held is replaced and takes no new slot (the SageMaker SDK refuses even that at 30,
    for no reason a user could act on). Uploads of one run may run concurrently: a slot is reserved
    before an upload starts, so that two of them cannot both take the 30th.
    """

    def __init__(self) -> None:
        self._pending: dict[bool, collections.Counter[str]] = {True: collections.Counter(), False: collections.Counter()}

    def check(self, record: RunRecord, name: str, is_output: bool) -> None:
        """Raise ``ValueError`` if ``name`` needs a new slot and the run has none left."""
        held = record.output_artifacts if is_output else record.input_artifacts
        pending = self._pending[is_output]
        if name in held or name in pending:
            return
        if len(held) + len(pending) >= MAX_ARTIFACTS:
            kind = "output" if is_output else "input"
            raise ValueError(
                f"cannot add {kind} artifact {name!r}: a run holds at most {MAX_ARTIFACTS} {kind} artifacts, as in "
                f"SageMaker, and this one has {len(held) + len(pending)}. Log a file that bundles several (a "
                "tar or zip), or use another run")

    @contextlib.contextmanager
    def reserved(self, record: RunRecord, name: str, is_output: bool) -> Iterator[None]:
        """Hold a slot for ``name`` for the length of a ``with`` block (the upload).

        Raises:
            ValueError: there is no slot left.
        """
        self.check(record, name, is_output)
        pending = self._pending[is_output]
        pending[name] += 1
        try:
            yield
        finally:
            pending[name] -= 1
            if not pending[name]:
                del pending[name]

    def put(self, record: RunRecord, name: str, artifact: Artifact, is_output: bool) -> None:
        """Record ``artifact`` under ``name``; the caller checked for room."""
        (record.output_artifacts if is_output else record.input_artifacts)[name] = artifact
