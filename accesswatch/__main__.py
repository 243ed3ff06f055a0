"""The ``accesswatch`` command's entry point: ``pyproject.toml``'s script, and ``python -m accesswatch``.

Only this module and the package's ``__init__`` are imported before the guard is in place: a Ctrl-C in the
first fraction of a second, while the command's modules import (pydantic, numpy, the store...), ends it as one
later does (``accesswatch.cli.main``), quietly with 130, not with a traceback of the import it stopped.
"""

import sys


def main() -> int:
    try:
        from accesswatch import cli

        return cli.main()
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
