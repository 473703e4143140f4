"""`make bench`: how fast the Graph loader lands a synthetic org, against DuckDB's own limit.

1. Generates (once, cached in `.bench/`) a synthetic organisation of 50 mailboxes x one year.
2. Serves it with the bundled Graph emulator on loopback and runs `python -m loaders graph`
   into a fresh warehouse: records landed per second and the loader's peak memory.
3. A fetch-only pass: the same client with the same concurrency fetching the same mailboxes,
   every page discarded (`--fetch-only`): the floor the loader's wall time is compared with.
4. The limit: DuckDB ingesting the very same records (as the loader received them) from an
   NDJSON file on disk into a fresh database, with the same column types.
5. A second loader run right after (delta: nothing changed) shows the incremental cost.

Each run is a process of its own: its wall time, CPU time (user + system) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from loaders import graph
from loaders.demo import _start_emulator
from loaders.landing import Lander
from loaders.schema import EVENT_FIELDS, MESSAGE_FIELDS
from loaders.settings import PROJECT_ROOT, GraphSettings
from loaders.warehouse import connect


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


@dataclass
class Run:
    seconds: float
    cpu_seconds: float  # user + system, of the process alone
    peak_kib: int  # max RSS of the process


def _timed(cmd: list[str], env: dict[str, str]) -> Run:
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench: {' '.join(cmd[2:5])} failed")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def _load(env: dict[str, str], groups: list[str], as_of: str, fetch_only: bool = False) -> Run:
    module = ["loaders.bench", "--fetch-only"] if fetch_only else ["loaders", "graph"]
    cmd = [sys.executable, "-m", *module, "--as-of", as_of, "--no-progress"]
    for group in groups:
        cmd += ["--group", group]
    return _timed(cmd, env)


class _DiscardingLander(Lander):
    """The loader's writer, minus the writing: pages and calendar snapshots are dropped, the
    rest (folder lists, stream ends) handled as usual."""

    def _land_pages(self, batch: list) -> None:
        return

    def _land_snapshots(self, items: list) -> None:
        return


def _fetch_only(argv: list[str]) -> int:
    """`--fetch-only`: `python -m loaders graph` into a throwaway warehouse with every page
    discarded: the same client, the same workers, the same requests."""
    parser = argparse.ArgumentParser(prog="python -m loaders.bench --fetch-only")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    graph.Lander = _DiscardingLander  # the one substitution
    with tempfile.TemporaryDirectory(prefix="fetch-only-") as scratch:
        con = connect(Path(scratch) / "fetch_only.duckdb")
        try:
            result = graph.load(con, GraphSettings.from_env(), [], args.group, args.as_of,
                                args.workers, show_progress=not args.no_progress)
        finally:
            con.close()
    print(f"fetch-only: {result.requests:,} requests in {result.seconds:.1f} s")
    return 0


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
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fetch-only"]:
        return _fetch_only(argv[1:])
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
        groups = [manifest["group_address"]]
        first = _load(env, groups, args.as_of)
        second = _load(env, groups, args.as_of)
        fetch = _load(env, groups, args.as_of, fetch_only=True)
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        messages = con.execute("select count(*) from raw_graph.messages").fetchone()[0]
        events = con.execute("select count(*) from raw_graph.events").fetchone()[0]
    limit_s, limit_rows = _duckdb_limit(warehouse, work)
    records = messages + events
    loader_rate = records / first.seconds
    limit_rate = limit_rows / limit_s
    print(
        f"\nGraph loader, {args.mailboxes} mailboxes x one year (emulator on loopback)\n"
        f"  landed            {messages:,} messages + {events:,} events\n"
        f"  first run         {first.seconds:.1f} s = {loader_rate:,.0f} records/s "
        f"(whole CLI: token, resolution, folders, paging, landing)\n"
        f"  CPU               {first.cpu_seconds:.1f} s = "
        f"{first.cpu_seconds / records * 1e6:.1f} CPU-s per million records (target <= 30)\n"
        f"  peak memory       {first.peak_kib / 1024:,.0f} MiB (loader process, max RSS)\n"
        f"  fetch-only pass   {fetch.seconds:.1f} s ({fetch.cpu_seconds:.1f} CPU-s): the first "
        f"run took {first.seconds / fetch.seconds:.2f} x (target <= 1.3)\n"
        f"  re-run (delta)    {second.seconds:.1f} s\n"
        f"  DuckDB limit      {limit_rows:,} records from NDJSON on disk in {limit_s:.2f} s "
        f"= {limit_rate:,.0f} records/s\n"
        f"  ratio             {loader_rate / limit_rate:.2f} of the limit (target >= 0.35)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
