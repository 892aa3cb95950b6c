"""Ingest · the engine between a run's caller and its backend, in the order a point takes:

``intake`` (checked and stamped at the call) → ``queue`` (bounded, any thread) → ``drain`` (the
loop that empties it) → ``batcher`` (sends from this process) or ``forwarder`` → ``messages`` over
``frames`` → ``sender`` (the run's sender process, itself running a ``batcher``) → ``dispatch``
(the delivery core: the in-flight ``limiter``, retries and their ``budget``, the answer rule) → a
backend. ``engine`` wires one run's; ``stats`` is what a user reads of it.
"""
