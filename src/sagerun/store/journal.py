"""Store · journal files: points beyond what a run's memory holds (the ``spill`` policy), kept on
disk in arrival order until they are read back to be sent.

One file per run and process, ``<store>/journal/<pid>-<n>.frames``, 0600. After an 8-byte header
(the offset of the first frame not yet read back) come frames, each a 4-byte big-endian length and
an orjson array: first ``["run", trial_component_name]``, then frames of points,
``["points", [[name, value, step, timestamp], ...]]``. A Points message
of the sender channel has that same layout, so the sender process writes what it receives as it
came, without decoding it. Appending and reading back cost a ``pwrite`` or ``pread`` of a whole
frame: nothing per point. A file whose process is gone is taken into the spool by
``recover`` (``sagerun sync`` does it first), from its header's offset on.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
from typing import Iterator, Sequence

import orjson

from .._model.points import Point
from .spool import Spool

logger = logging.getLogger("sagerun")

FOLDER = "journal"
_HEADER = 8
_LENGTH = 4
#: how a frame of points begins, as orjson writes it (the sender checks received frames by it)
POINTS_PREFIX = b'["points",'
#: why points taken from a journal file are in the spool
SPILLED = "spilled to disk beyond the queue's room, not sent before the run's process ended"
_files = itertools.count()


def points_frame(points: Sequence[Point]) -> bytes:
    """The frame of ``points``, as ``FrameJournal.append`` takes it."""
    return orjson.dumps(["points", points])


class FrameJournal:
    """The journal file of one run in this process; blocking and thread-safe (the inline drain
    writes from one worker thread while it reads back from another). Created on the first
    ``append``; ``close`` deletes it.

    Raises:
        OSError: the file cannot be written (the disk is full, the store is gone).
    """

    def __init__(self, store_path: str, trial_component_name: str) -> None:
        self.path = os.path.join(store_path, FOLDER, f"{os.getpid()}-{next(_files)}.frames")
        self.trial_component_name = trial_component_name
        self._fd: int | None = None
        self._lock = threading.Lock()
        self._read = self._end = _HEADER
        self.frames = 0
        """Frames appended and not yet read back."""

    def __bool__(self) -> bool:
        return self.frames > 0

    def append(self, frame: bytes) -> None:
        """Keep ``frame`` (a ``points_frame``, or a Points message as the sender channel carried it)."""
        with self._lock:
            self._append(frame)

    def _append(self, frame: bytes) -> None:
        if self._fd is None:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_TRUNC, 0o600)
            self._end = 0
            self._pwrite(bytes(_HEADER) + _framed(orjson.dumps(["run", self.trial_component_name])))
            self._read = self._end
            self._mark()
        self._pwrite(_framed(frame))
        self.frames += 1

    def write(self, points: Sequence[Point]) -> None:
        """Keep ``points`` as one frame."""
        self.append(points_frame(points))

    def read(self) -> list[Point]:
        """The points of the oldest frame not read back; the file is emptied once all are.

        Raises:
            IndexError: there is none (check ``bool(journal)`` first).
            ValueError: the file holds a damaged frame.
        """
        return frame_points(self.read_frame())

    def read_frame(self) -> bytes:
        """The oldest frame not read back, as ``append`` took it (``read``'s raw form)."""
        with self._lock:
            return self._read_frame()

    def _read_frame(self) -> bytes:
        if not self.frames:
            raise IndexError("the journal is empty")
        assert self._fd is not None
        size = int.from_bytes(os.pread(self._fd, _LENGTH, self._read), "big")
        frame = os.pread(self._fd, size, self._read + _LENGTH)
        self._read += _LENGTH + size
        self.frames -= 1
        if not self.frames:  # start over, so that the file never grows beyond what is unread
            os.ftruncate(self._fd, self._read_start())
            self._end = self._read = self._read_start()
        self._mark()
        return frame

    def close(self) -> None:
        """Delete the file, with whatever it still holds (read it first to keep that)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
                os.unlink(self.path)

    def _read_start(self) -> int:
        """Where the first frame of points begins, after the header and the run's frame."""
        assert self._fd is not None
        return _HEADER + _LENGTH + int.from_bytes(os.pread(self._fd, _LENGTH, _HEADER), "big")

    def _pwrite(self, data: bytes) -> None:
        assert self._fd is not None
        written = os.pwrite(self._fd, data, self._end)
        if written != len(data):
            raise OSError(f"could not write the journal {self.path}: the disk is full")
        self._end += written

    def _mark(self) -> None:
        assert self._fd is not None
        os.pwrite(self._fd, self._read.to_bytes(_HEADER, "big"), 0)


def _framed(payload: bytes) -> bytes:
    return len(payload).to_bytes(_LENGTH, "big") + payload


def frame_points(payload: bytes) -> list[Point]:
    """The points of a frame of points.

    Raises:
        ValueError: it is not one.
    """
    document = orjson.loads(payload)
    if not (isinstance(document, list) and len(document) == 2 and document[0] == "points"):
        raise ValueError(f"a journal frame is not a frame of points: {payload[:40]!r}")
    return [(name, value, step, timestamp) for name, value, step, timestamp in document[1]]


def leftovers(store_path: str) -> Iterator[tuple[str, str, list[Point]]]:
    """The journal files of processes that are gone: each file's path, trial component and unread
    points (``recover``'s input). A damaged file is logged and skipped."""
    folder = os.path.join(store_path, FOLDER)
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return
    for name in names:
        pid = name.split("-", 1)[0]
        if not name.endswith(".frames") or not pid.isdigit() or _alive(int(pid)):
            continue
        path = os.path.join(folder, name)
        try:
            with open(path, "rb") as file:
                data = file.read()
            yield path, *_unread(data)
        except (ValueError, IndexError, orjson.JSONDecodeError) as exc:
            logger.error("sagerun: the journal file %s is damaged and was not taken into the spool: %s", path, exc)


def _unread(data: bytes) -> tuple[str, list[Point]]:
    size = int.from_bytes(data[_HEADER:_HEADER + _LENGTH], "big")
    kind, trial_component_name = orjson.loads(data[_HEADER + _LENGTH:_HEADER + _LENGTH + size])
    if kind != "run":
        raise ValueError("it does not begin with its run")
    offset = max(int.from_bytes(data[:_HEADER], "big"), _HEADER + _LENGTH + size)
    points: list[Point] = []
    while offset + _LENGTH <= len(data):
        size = int.from_bytes(data[offset:offset + _LENGTH], "big")
        if offset + _LENGTH + size > len(data):
            break  # a frame cut short by the kill: its points never were whole on disk
        points += frame_points(data[offset + _LENGTH:offset + _LENGTH + size])
        offset += _LENGTH + size
    return trial_component_name, points


def recover(store_path: str) -> int:
    """Take the unread points of the journal files of processes that are gone into the spool of
    ``store_path``, and delete the files; return how many points were taken.

    Raises:
        sqlite3.Error, OSError: the spool cannot be written (the files are kept).
    """
    taken = 0
    for path, trial_component_name, points in leftovers(store_path):
        if points:
            with Spool(store_path) as spool:
                spool.add(trial_component_name, points, SPILLED)
        os.unlink(path)
        taken += len(points)
    return taken


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
