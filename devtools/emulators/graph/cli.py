"""`python -m devtools.emulators.graph --data DIR ...`: serve a synthetic organisation as Graph
until SIGTERM/SIGINT, after printing the loaders' settings for it."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from devtools.emulators.graph.app import GraphEmulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulators.graph",
                                     description="Serve a synthetic organisation as Graph.")
    parser.add_argument("--data", required=True, type=Path, help="the generator's output dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token-ttl", type=int, default=3600, help="token lifetime, seconds")
    parser.add_argument("--lazy", action="store_true",
                        help="load each mailbox on first use instead of before serving")
    parser.add_argument("--latency-ms", type=int, default=0,
                        help="added to every Graph request, as a distant tenant would")
    parser.add_argument("--tls", action="store_true",
                        help="serve Graph over https too (login is always https)")
    parser.add_argument("--client-certificate", action="append", default=[], type=Path,
                        metavar="PEM", help="a certificate (PEM) to register for the app, as "
                        "uploaded under Certificates & secrets; repeatable")
    args = parser.parse_args(argv)
    if not (args.data / "graph" / "users.json").exists():
        print(f"error: {args.data} holds no synthetic organisation "
              "(run python -m devtools.synthetic --out DIR first)", file=sys.stderr)
        return 2
    try:
        emulator = GraphEmulator(args.data, host=args.host, port=args.port,
                                 token_ttl_seconds=args.token_ttl, tls=args.tls,
                                 client_certificates=args.client_certificate)
    except (OSError, ValueError) as exc:
        print(f"error: --client-certificate: {exc}", file=sys.stderr)
        return 2
    emulator.faults.latency_ms = args.latency_ms
    if not args.lazy:
        emulator.preload()
    emulator.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"GRAPH_API_URL={emulator.graph_url}")
    print(f"GRAPH_LOGIN_URL={emulator.login_url}")
    print(f"GRAPH_TENANT_ID={emulator.tenant_id}")
    print(f"GRAPH_CLIENT_ID={emulator.client_id}")
    print(f"REQUESTS_CA_BUNDLE={emulator.ca_bundle}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0
