"""Integrations · Lightning's older package, ``pytorch_lightning``: ``Trainer(logger=SagerunLogger(...))``.

For ``lightning.pytorch``, ``sagerun.integrations.lightning.SagerunLogger``.
"""

from __future__ import annotations

from pytorch_lightning.loggers.logger import Logger
from pytorch_lightning.utilities import rank_zero_only

from ._lightning import DOC, LoggerMembers

__all__ = ["SagerunLogger"]


class SagerunLogger(LoggerMembers, Logger):
    __doc__ = DOC
    _rank_zero = rank_zero_only
