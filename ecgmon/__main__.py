"""``python -m ecgmon``: the same command line as ``ecgmon``."""

import sys

from ecgmon.cli.main import main

sys.exit(main())
