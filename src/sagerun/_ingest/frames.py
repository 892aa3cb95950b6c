"""Ingest · the socket between a run and its sender process: each message as orjson behind a 4-byte length.

One socket carries both directions; a lock per direction keeps frames whole when several tasks
write (anyio refuses two concurrent sends on one stream).
"""

from __future__ import annotations

import socket

import anyio
import orjson
from anyio.abc import UNIXSocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from .messages import Message, decode, encode

_LENGTH = 4


class Channel:
    """Send and receive whole messages over a connected Unix socket."""

    def __init__(self, stream: UNIXSocketStream) -> None:
        self._stream = stream
        self._reader = BufferedByteReceiveStream(stream)
        self._send_lock = anyio.Lock()

    @classmethod
    async def from_socket(cls, sock: socket.socket | int) -> Channel:
        return cls(await UNIXSocketStream.from_socket(sock))

    async def send(self, message: Message) -> None:
        """Send one message.

        Raises:
            anyio.BrokenResourceError, anyio.ClosedResourceError: the other side is gone.
        """
        await self.send_payload(orjson.dumps(encode(message)))

    async def send_payload(self, payload: bytes) -> None:
        """Send a message already encoded (a frame of points kept in a journal file).

        Raises:
            anyio.BrokenResourceError, anyio.ClosedResourceError: the other side is gone.
        """
        async with self._send_lock:
            await self._stream.send(len(payload).to_bytes(_LENGTH, "big") + payload)

    async def receive(self) -> Message:
        """The next message.

        Raises:
            anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError: the other side is gone.
            ValueError: what came is not a message.
        """
        return parse(await self.receive_payload())

    async def receive_payload(self) -> bytes:
        """The next message as it came, for ``parse`` (or to keep as it is).

        Raises:
            anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError: the other side is gone.
        """
        size = int.from_bytes(await self._reader.receive_exactly(_LENGTH), "big")
        return await self._reader.receive_exactly(size)

    async def aclose(self) -> None:
        await self._stream.aclose()


def parse(payload: bytes) -> Message:
    """The message a received payload stands for.

    Raises:
        ValueError: it is not a message.
    """
    return decode(orjson.loads(payload))


#: what ends a channel: the peer closed it, died, or sent half a frame
GONE = (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError, anyio.ClosedResourceError,
        ConnectionError)
