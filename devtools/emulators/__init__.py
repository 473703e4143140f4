"""Local emulators of the external APIs the loaders call, for demos, tests and benchmarks."""
