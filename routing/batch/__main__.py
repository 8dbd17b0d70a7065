"""``python -m routing.batch``: see :mod:`routing.batch.cli`."""

import sys

from routing.batch.cli import main

if __name__ == "__main__":
    sys.exit(main())
