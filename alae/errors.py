"""The one base class of the errors a user can fix, which every command line prints as one line.

Each package raises its own subclass (ConfigError, CheckpointError, DatasetError, MetricError,
ToolError, ...), with a message that names the field, path or key at fault. `alae.cli.run_tool`
and `alae-train` catch `USER_ERRORS` and print `alae-NAME: error: MESSAGE`, never a traceback.
"""
from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input (a file, a field, an argument); the message is one line."""


# What a command line reports as one line: our errors, and a file the user named that is not
# there (raised by the standard library where a path is opened).
USER_ERRORS = (UserError, FileNotFoundError)
