"""`python -m local`: the same as `relay-local` (see local.commands)."""

from local.commands import main

raise SystemExit(main())
