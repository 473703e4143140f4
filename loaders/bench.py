"""`make bench`: how fast the Graph loader lands a synthetic org, against DuckDB's own limit.

1. Generates (once, cached in `.bench/`) a synthetic organisation of 50 mailboxes x one year.
2. Serves it with the bundled Graph emulator on loopback and runs `python -m loaders graph`
   into a fresh warehouse: records landed per second and the loader's peak memory.
3. The limit: DuckDB ingesting the very same records (as the loader received them) from an
   NDJSON file on disk into a fresh database, with the same column types.
4. A second loader run right after (delta: nothing changed) shows the incremental cost.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from loaders.demo import _start_emulator
from loaders.schema import EVENT_FIELDS, MESSAGE_FIELDS
from loaders.settings import PROJECT_ROOT


def _generate(out: Path, mailboxes: int, messages: int, as_of: str) -> None:
    marker = out / "manifest.json"
    if marker.exists():
        manifest = json.loads(marker.read_text())
        if manifest.get("bench_key") == [mailboxes, messages, as_of]:
            return
    subprocess.run(
        [sys.executable, "-m", "loaders.synthetic", "--out", str(out), "--seed", "7",
         "--mailboxes", str(mailboxes), "--accounts", "400",
         "--messages-per-mailbox", str(messages), "--as-of", as_of],
        check=True,
    )
    manifest = json.loads(marker.read_text())
    manifest["bench_key"] = [mailboxes, messages, as_of]
    marker.write_text(json.dumps(manifest))


def _load(env: dict[str, str], groups: list[str], as_of: str) -> tuple[float, int]:
    cmd = [sys.executable, "-m", "loaders", "graph", "--as-of", as_of, "--no-progress"]
    for group in groups:
        cmd += ["--group", group]
    started = time.perf_counter()
    subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, check=True)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kib


def _duckdb_limit(warehouse: Path, work: Path) -> tuple[float, int]:
    """Seconds for DuckDB to ingest the landed records from NDJSON files on disk."""
    files = {"messages": work / "messages.ndjson", "events": work / "events.ndjson"}
    fields = {"messages": MESSAGE_FIELDS, "events": EVENT_FIELDS}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for kind, path in files.items():
            columns = ", ".join(f'"{name}"' for name in fields[kind])
            con.execute(
                f"copy (select {columns} from raw_graph.{kind}) to '{path}' (format json)"
            )
    target = work / "limit.duckdb"
    target.unlink(missing_ok=True)
    rows = 0
    started = time.perf_counter()
    with duckdb.connect(str(target)) as con:
        for kind, path in files.items():
            columns = "{" + ", ".join(
                f"'{name}': '{sql_type}'" for name, sql_type in fields[kind].items()
            ) + "}"
            con.execute(
                f"create table {kind} as select * from read_json(?, columns = {columns}, "
                "format = 'newline_delimited')",
                [str(path)],
            )
            rows += con.execute(f"select count(*) from {kind}").fetchone()[0]
    return time.perf_counter() - started, rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loaders.bench", description=__doc__)
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--messages-per-mailbox", type=int, default=6000)
    parser.add_argument("--as-of", default="2026-06-30")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".bench")
    args = parser.parse_args(argv)

    work = args.workdir.resolve()
    org = work / "org"
    work.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.mailboxes} mailboxes x {args.messages_per_mailbox} messages ...")
    _generate(org, args.mailboxes, args.messages_per_mailbox, args.as_of)
    manifest = json.loads((org / "manifest.json").read_text())

    warehouse = work / "bench.duckdb"
    warehouse.unlink(missing_ok=True)
    credentials = manifest["emulator"]
    env = {**os.environ, "DUCKDB_PATH": str(warehouse),
           "GRAPH_TENANT_ID": credentials["tenant_id"], "GRAPH_CLIENT_ID": credentials["client_id"],
           "GRAPH_CLIENT_SECRET": credentials["client_secret"]}
    emulator, urls = _start_emulator(org, env)
    try:
        env.update(urls)
        first_s, peak_kib = _load(env, [manifest["group_address"]], args.as_of)
        second_s, _ = _load(env, [manifest["group_address"]], args.as_of)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        messages = con.execute("select count(*) from raw_graph.messages").fetchone()[0]
        events = con.execute("select count(*) from raw_graph.events").fetchone()[0]
    limit_s, limit_rows = _duckdb_limit(warehouse, work)
    loader_rate = (messages + events) / first_s
    limit_rate = limit_rows / limit_s
    print(
        f"\nGraph loader, {args.mailboxes} mailboxes x one year (emulator on loopback)\n"
        f"  landed            {messages:,} messages + {events:,} events\n"
        f"  first run         {first_s:.1f} s = {loader_rate:,.0f} records/s "
        f"(whole CLI: token, resolution, folders, paging, landing)\n"
        f"  peak memory       {peak_kib / 1024:,.0f} MiB (loader process, max RSS)\n"
        f"  re-run (delta)    {second_s:.1f} s\n"
        f"  DuckDB limit      {limit_rows:,} records from NDJSON on disk in {limit_s:.2f} s "
        f"= {limit_rate:,.0f} records/s\n"
        f"  ratio             {loader_rate / limit_rate:.2f} of the limit (target >= 0.3)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
