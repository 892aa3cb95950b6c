"""Artifacts · images (``log_image``): a PNG or JPEG file as it is, or a matplotlib figure drawn to PNG in memory.

A file is recognised by its first bytes, not its name, so that a file named ``.png`` that is not
one is refused at the call rather than stored and then shown broken.
"""

from __future__ import annotations

import io
from typing import Any

PNG, JPEG = "image/png", "image/jpeg"
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", PNG, ".png"), (b"\xff\xd8\xff", JPEG, ".jpg"))


def check_source(path: object, figure: object) -> None:
    """Exactly one of ``path`` and ``figure``, and a figure that can be drawn.

    Raises:
        ValueError: both or neither are given.
        TypeError: ``figure`` is not a matplotlib figure (it has no ``savefig``).
        RuntimeError: a figure is given but matplotlib is not installed.
    """
    if (path is None) == (figure is None):
        raise ValueError("log_image takes exactly one of path (a PNG or JPEG file) and figure (a matplotlib "
                         f"figure); got {'both' if path is not None else 'neither'}")
    if figure is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise RuntimeError("log_image(figure=...) needs matplotlib: pip install 'sagerun[charts]'") from None
        if not callable(getattr(figure, "savefig", None)):
            raise TypeError(f"figure must be a matplotlib Figure; got {type(figure).__name__}")


def image_type(path: str) -> tuple[str, str]:
    """The media type and file extension of the image file ``path``.

    Raises:
        ValueError: the file is neither a PNG nor a JPEG (its first bytes say so).
        OSError: it cannot be read.
    """
    with open(path, "rb") as file:
        head = file.read(8)
    for signature, media_type, extension in _SIGNATURES:
        if head.startswith(signature):
            return media_type, extension
    raise ValueError(f"{path} is not a PNG or JPEG image (its first bytes are {head!r}): log it with log_file")


def figure_png(figure: Any) -> bytes:
    """``figure`` drawn to PNG bytes, in the caller's thread (never on the event loop)."""
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
