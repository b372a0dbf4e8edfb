"""``python -m supernet.commands <name> [overrides]``: any command without its console script."""

from supernet.commands.cli import dispatch

dispatch()
