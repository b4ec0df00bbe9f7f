"""`python -m session_store.cli`: the same as the `session-store` console script."""

from session_store.cli.main import main

raise SystemExit(main())
