"""``python -m supernet`` = the ``supernet`` pipeline command."""

from supernet.commands.cli import pipeline

pipeline()
