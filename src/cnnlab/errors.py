"""One exception type for every user-facing failure: the CLI prints its message as one line."""


class CnnlabError(Exception):
    """A problem the user can fix (bad input, missing data, ...). `exit_code` is what the CLI returns."""

    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code
