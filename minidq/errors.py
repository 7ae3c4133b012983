"""The one base class of the errors (and the warnings) minidq raises for bad input (a file, a flag, a config).

Each module keeps its own error type (ConfigError, DataError, CheckpointError, ...); they all
derive from MinidqError, so the command line can tell a user's mistake, printed as one line,
from a bug in minidq, which deserves a traceback.
"""


class MinidqError(Exception):
    """A problem with what minidq was given, with the file or setting named in the message."""


class MinidqWarning(UserWarning):
    """Something the user should know that does not stop the work (inputs or outputs cut short,
    bad lines skipped); the command line prints it as one `minidq: warning: ...` line."""
