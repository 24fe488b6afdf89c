"""Errors a user can cause (bad config, missing file, invalid arch).

The CLI prints a `UserError` as one line on stderr and exits with status 2, without a traceback;
anything else is a bug and keeps its traceback.
"""


class UserError(Exception):
    """An error caused by user input, reported as one clear line (exit code 2)."""
