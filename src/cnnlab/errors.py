"""One exception type for every user-facing failure, and every exit code the CLI returns, defined here
once (the low layer: this module imports nothing from cnnlab, so any module may import it).

Distinct codes let a scheduler or script tell "fix the command" from "retry later" from "restore from
backup" (README.md lists them).
"""

EXIT_USAGE = 2  # a usage error: bad flag, unknown name, missing file (CnnlabError's default)
EXIT_DIVERGED = 3  # loss became NaN/inf
EXIT_OUT_UNWRITABLE = 4  # --out (or any output file) cannot be created or written
EXIT_OUT_FULL = 5  # too little free space for the run's checkpoints (or a write hit ENOSPC)
EXIT_RUN_EXISTS = 6  # --out already holds a run (neither --resume nor --overwrite)
EXIT_BAD_CHECKPOINT = 7  # truncated, corrupt or mismatched checkpoint / resume state / weights file
EXIT_UNSAFE_CHECKPOINT = 8  # a pickle that would run code when loaded: refused


class CnnlabError(Exception):
    """A problem the user can fix (bad input, missing data, ...). `exit_code` is what the CLI returns."""

    def __init__(self, message: str, exit_code: int = EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code
