"""Entry · ``python -m sagerun``: the ``sagerun`` command."""

from .cli import main

main()
