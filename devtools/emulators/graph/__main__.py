"""`python -m devtools.emulators.graph`: see `devtools.emulators.graph.cli`."""

from devtools.emulators.graph.cli import main

raise SystemExit(main())
