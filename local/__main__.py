"""`python -m local`: the same as `relay-local` (see local.cli)."""

from local.cli import main

raise SystemExit(main())
