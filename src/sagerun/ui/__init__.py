"""UI · ``sagerun ui``: a read-only web UI over the local store (``server``), its JSON (``data``),
and the downsampling that keeps a million-point metric quick to draw (``downsample``)."""
