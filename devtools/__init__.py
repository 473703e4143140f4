"""Development tools, not part of the installed product: the Graph and Leadspace emulators, the
synthetic organisation they serve, and the demo driver (`make demo`)."""
