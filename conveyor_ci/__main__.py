"""``python -m conveyor_ci``: the ``conveyor`` command."""

import sys

from conveyor_ci import main

sys.exit(main())
