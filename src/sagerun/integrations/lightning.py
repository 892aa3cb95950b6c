"""Integrations · Lightning (``lightning.pytorch``): ``Trainer(logger=SagerunLogger(...))``.

For the older ``pytorch_lightning`` package, ``sagerun.integrations.pytorch_lightning.SagerunLogger``.
"""

from __future__ import annotations

from lightning.pytorch.loggers.logger import Logger
from lightning.pytorch.utilities import rank_zero_only

from ._lightning import DOC, LoggerMembers

__all__ = ["SagerunLogger"]


class SagerunLogger(LoggerMembers, Logger):
    __doc__ = DOC
    _rank_zero = rank_zero_only
