"""``python -m supernet`` = the ``supernet`` pipeline command."""

from .cli.pipeline import main

main()
