"""The one error type the CLI turns into a single line and a non-zero exit."""


class EdgebenchError(Exception):
    """A user-facing problem: the message says what is wrong and what to do."""

    exit_code = 2


class InterruptedRun(EdgebenchError):
    """The user stopped a run; rows already written stay on disk."""

    exit_code = 130
