"""Artifacts · artifacts of runs: files, evaluation charts and result tables, where their bytes go, and previews.

* ``limits``: what SageMaker accepts as an artifact, 30 inputs and 30 outputs a run.
* ``charts``: confusion matrix, ROC and precision-recall documents in the SageMaker SDK's format.
* ``tables``: table documents laid out for previews that read only the first rows.
* ``storage``, ``s3``, ``clients``: where bytes go (S3 or the local store) and the AWS clients used.
* ``lineage``: CreateArtifact + AddAssociation for charts and tables, best effort.
* ``state``: the steps of each artifact call of a ``Run``.
* ``documents``, ``preview``: reading stored documents back, for ``sagerun table`` and ``sagerun chart``.
* ``publish``: uploading a local run's artifact files to S3 when ``sagerun sync`` pushes it.

Nothing heavy is imported here: scikit-learn, aioboto3 and matplotlib load on first use.
"""
