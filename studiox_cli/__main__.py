"""`python -m studiox_cli`: the `studiox` command without its console script."""

import sys

from studiox_cli.main import main

sys.exit(main())
