"""A command run as ``accesswatch ... | head -1`` with a quick reader: its stdout a pipe already closed."""

from __future__ import annotations

import os
import subprocess
import sys


def buffered() -> dict[str, str]:
    """The environment with stdout block-buffered into a pipe, as in a person's shell: PYTHONUNBUFFERED (set where
    the tests run, for their logs) wrote each line at once, and a closed pipe failed at the first of them."""
    return {key: value for key, value in os.environ.items() if key != "PYTHONUNBUFFERED"}


def into_a_closed_pipe(*args: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m accesswatch.cli ARGS`` with its stdout a pipe whose reader went before the first line: every
    write to stdout fails (once the buffer is flushed)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "accesswatch.cli", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            timeout=300,
            env=buffered(),
        )
    finally:
        os.close(write)
