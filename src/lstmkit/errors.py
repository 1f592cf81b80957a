"""User-facing errors, and the one-line warnings and notes beside them.

Anything raised as :class:`LstmkitError` is a problem with the user's input (a file, a column, an
option, a model folder), not a bug: the CLI prints its message as one line and exits with code 2.
Messages name the file, line or field at fault.
"""


class LstmkitError(Exception):
    """A problem the user can fix; printed as one line by the CLI (exit code 2)."""


class DataError(LstmkitError):
    """Bad input data: a missing file or column, NaN, a ragged line, an empty file, ..."""


class ModelFolderError(LstmkitError):
    """A model folder with missing, corrupt or mismatched files."""


def warn(message: str) -> None:
    """One line ``warning: ...`` on stderr: something the user should know (results go to stdout)."""
    import sys

    print(f"warning: {message}", file=sys.stderr)


def note(message: str) -> None:
    """One line ``note: ...`` on stderr: a non-fatal finding (rows sorted, a default resolved)."""
    import sys

    print(f"note: {message}", file=sys.stderr)
