"""Model · the bottom layer: what every other part shares, importing nothing else of sagerun.

Points and run records, the errors and a backend's answers, the retry policy, the ``Session``
settings, the naming and checking rules, and where this process runs (a SageMaker job or not).
"""
