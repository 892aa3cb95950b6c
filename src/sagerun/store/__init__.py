"""Store · the local store: one SQLite file holding runs, their metrics, and the spool of undelivered points.

Nothing but storage: it imports only the model. Sending what it holds is ``sagerun._upload``'s.
"""

from .db import DB_NAME, NoStoreError, StoreVersionError, connect, database_path, opened
from .spool import Spool, SpoolBatch, spool_dead_letter

__all__ = ["DB_NAME", "NoStoreError", "Spool", "SpoolBatch", "StoreVersionError", "connect", "database_path",
           "opened", "spool_dead_letter"]
