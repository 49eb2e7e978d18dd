"""The command line's exit skips Python's last garbage collection (cnnlab.cli.entry); main() does not."""

import subprocess
import sys

# atexit handlers run after entry() has returned, at the start of the interpreter's shutdown
SCRIPT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen", gc.get_freeze_count(), file=sys.stderr))
sys.argv = ["cnnlab", *sys.argv[1:]]
from cnnlab.cli import {func}
{func}({args})
"""


def run(func: str, args: str, *argv: str) -> subprocess.CompletedProcess:
    code = SCRIPT.format(func=func, args=args)
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)


def test_the_command_line_freezes_objects_before_exit_and_still_prints_everything():
    proc = run("entry", "", "explain", "output-size", "--json")
    assert proc.returncode == 0
    assert proc.stdout.strip().endswith("}")  # the whole JSON reached stdout before the shutdown
    frozen = int(proc.stderr.split("frozen")[-1])
    assert frozen > 10_000  # every object alive at exit, out of the final collection's reach


def test_exit_codes_pass_through_entry():
    proc = run("entry", "", "train", "--model", "no-such-model")
    assert proc.returncode == 2 and "no-such-model" in proc.stderr


def test_main_called_from_python_leaves_the_collector_alone():
    proc = run("main", "['--version']")
    assert proc.returncode == 0 and proc.stderr.split("frozen")[-1].strip() == "0"
