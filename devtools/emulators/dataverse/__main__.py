"""`python -m devtools.emulators.dataverse --data DIR [--port 0]`: serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from devtools.emulators.dataverse.app import DataverseEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulators.dataverse",
                                     description=__doc__)
    parser.add_argument("--data", type=Path, required=True,
                        help="the synthetic organisation (python -m devtools.synthetic --out)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    with DataverseEmulator(args.data, port=args.port) as emulator:
        for name, value in emulator.env().items():
            if name != "GRAPH_CLIENT_SECRET":  # a secret is never printed
                print(f"{name}={value}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
