"""``python -m training.quality``: see :mod:`training.quality.model`."""

import sys

from training.quality.model import main

if __name__ == "__main__":
    sys.exit(main())
