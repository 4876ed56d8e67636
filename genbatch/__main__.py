"""`python -m genbatch` is the `genbatch` command."""

from genbatch.cli import main

raise SystemExit(main())
