"""``python -m headstart``: the same command line as the ``headstart`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
