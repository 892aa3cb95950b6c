"""The local store: one SQLite file holding runs, their metrics, and the spool of undelivered points.

``sagerun.store.delivery`` (``sagerun sync``: delivery to SageMaker) is not imported here: it
imports botocore, and aioboto3 when it runs.
"""

from .db import DB_NAME, NoStoreError, StoreVersionError, connect, database_path, opened
from .spool import Spool, SpoolBatch, spool_dead_letter

__all__ = ["DB_NAME", "NoStoreError", "Spool", "SpoolBatch", "StoreVersionError", "connect", "database_path",
           "opened", "spool_dead_letter"]
