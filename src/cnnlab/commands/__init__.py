"""The commands of `cnnlab`: one module per command, a thin layer over the library.

Each module has `add_arguments(parser)` (its flags, help in the current language) and `run(args) -> int`
(the exit code): it turns the flags into a call of library functions -- the same ones the Python API
(`cnnlab.api`, `cnnlab.__init__`) calls -- and prints what they return: human text, or with `--json`
exactly one JSON value on stdout (progress and notes on stderr). The library prints nothing a command
would have to catch; errors are `CnnlabError`s, which `cnnlab.cli` turns into one `cnnlab: error:` line
and the error's exit code. `cnnlab.cli.COMMANDS` lists the modules; docs/extending.md says how to add one.
"""
