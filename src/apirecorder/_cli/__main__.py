"""``python -m apirecorder._cli``: the ``apirecorder`` command without its console script."""

import sys

from . import main

sys.exit(main())
