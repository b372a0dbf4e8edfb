"""``python -m supernet`` = the ``supernet`` pipeline command."""

from supernet.commands.pipeline import main

main()
