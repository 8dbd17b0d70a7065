"""``python -m training.benchmark``: see :mod:`training.benchmark.run`."""

import sys

from training.benchmark.run import main

if __name__ == "__main__":
    sys.exit(main())
