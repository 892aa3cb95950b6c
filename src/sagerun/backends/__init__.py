"""Where runs and their points are kept: SageMaker, or the local store."""
