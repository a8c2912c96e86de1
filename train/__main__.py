"""`python -m vaekit.train` (what torchrun launches) runs the `vaekit-train` command."""

import sys

from .cli import main

sys.exit(main())
