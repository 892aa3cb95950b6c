"""The local store: one SQLite file holding runs, their metrics, and the spool of undelivered points.

``sagerun.store.sync`` (delivery to SageMaker) is not imported here: it pulls in aioboto3.
"""

from .db import DB_NAME, NoStoreError, StoreVersionError, connect, database_path
from .spool import Spool, SpoolBatch, spool_dead_letter

__all__ = ["DB_NAME", "NoStoreError", "Spool", "SpoolBatch", "StoreVersionError", "connect", "database_path",
           "spool_dead_letter"]
