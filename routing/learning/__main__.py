"""``python -m routing.learning export|show``: the outcome log's command line (:func:`routing.learning.outcome_log.main`)."""

import sys

from routing.learning.outcome_log import main

if __name__ == "__main__":
    sys.exit(main())
