"""Integrations · sagerun inside the training loops of frameworks: one thin adapter per framework.

``sagerun.integrations.transformers.SagerunCallback`` (Hugging Face ``Trainer``),
``sagerun.integrations.lightning.SagerunLogger`` (``lightning.pytorch``; ``.pytorch_lightning``
for the older package), ``sagerun.integrations.keras.SagerunCallback`` (Keras 3),
``sagerun.integrations.xgboost.SagerunCallback`` and ``sagerun.integrations.lightgbm.SagerunCallback``.

Each adapter imports its framework when it is imported, and nothing here imports one: ``import
sagerun`` never loads a framework. The adapters translate a framework's events into which run,
which step, which names and which parameters; one core (``_core``) owns the run, the rank gating,
the rules for values and parameters, and keeps a failing callback from stopping the training.
"""
