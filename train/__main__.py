"""`python -m vaekit.train` (what torchrun launches) runs the `vaekit-train` command."""

import sys

from .train_cli import main

sys.exit(main())
