"""Read · runs read back from any backend, for users, the CLI and the UI: one row per run with its
parameters, tags and metric summaries, and metric histories as arrays.

``rows`` holds the shapes, ``query`` what a search asks and the rules every backend applies the
same way, and one reader per backend answers it (``local``, ``sagemaker``, ``mlflow``), pushing
down what its API can filter. ``readers.open_reader`` picks the reader for a session.
"""
