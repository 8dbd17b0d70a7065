"""``python -m training.pipeline``: see :mod:`training.pipeline.run`."""

import sys

from training.pipeline.run import main

if __name__ == "__main__":
    sys.exit(main())
