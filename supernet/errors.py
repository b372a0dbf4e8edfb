"""Errors a user can act on.

`UsageError` is raised for bad configs, bad paths and bad input files. The command-line
entry points turn it into a one-line message on stderr and exit code 2 (see `supernet.commands.common`),
so a user never sees a stack trace for a mistake they can fix (unless `HYDRA_FULL_ERROR=1`).
"""


class UsageError(ValueError):
    """A mistake in the user's config or input: the message names the key, the value and the fix."""


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the message names the step and the sampled arch."""
