"""`make bench`: how fast the Graph loader lands a synthetic org, against DuckDB's own limit.

1. Generates (once, cached in `.bench/`) a synthetic organisation of 50 mailboxes x one year.
2. Serves it with the bundled Graph emulator on loopback and runs `python -m loaders graph`
   into a fresh warehouse: records landed per second, CPU per million records, peak memory.
3. A fetch-only pass: the same client with the same concurrency fetching the same mailboxes,
   every page discarded (`--fetch-only`): the floor the loader's wall time is compared with.
4. The limit: DuckDB ingesting the very same records (as the loader received them) from an
   NDJSON file on disk into a fresh database, with the same column types.
5. A second loader run right after (delta: nothing changed) shows the incremental cost.
6. Memory at scale: a first load of 200 mailboxes (its own cached organisation).
7. Latency: the emulator adds 300 ms to every request, and the 200 mailboxes load at
   `--workers` 8, 32 and 64 (mailboxes in parallel: 200 > 64, so workers, not mailboxes,
   are the limit). From each, the projected first load of 2,500 mailboxes x
   30,000 messages, on this machine and on 16 cores (`_projection`).

Each run is a process of its own: its wall time, CPU time (user + system) and peak memory.
Steps 2-4 are repeated `--rounds` times (first load and fetch-only pass alternating, each
first load into a fresh warehouse): the medians are printed with the range, as this 2-core
machine's figures swing by ~10 % from run to run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from devtools.demo import _start_emulator
from loaders.graph import load as graph
from loaders.graph.landing import Lander
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
        [sys.executable, "-m", "devtools.synthetic", "--out", str(out), "--seed", "7",
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
    requests: int  # as the run's summary line counts them


# A child's max RSS (ru_maxrss) starts at its parent's: the child shares the parent's memory
# until it execs, and Linux carries that high-water mark over the exec. This process grows to
# ~800 MiB (DuckDB's ingest in `_duckdb_limit`), which every later run reported as its own
# peak (the 200-mailbox load: 801 MiB, against 500-530 MiB sampled from /proc). So each run is
# started by a small launcher, which reports the run's own wall time, CPU time and peak.
_LAUNCHER = """
import os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    report.write(f"{seconds} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss}")
sys.exit(0 if os.waitstatus_to_exitcode(status) == 0 else 1)
"""


def _timed(cmd: list[str], env: dict[str, str]) -> Run:
    with tempfile.NamedTemporaryFile("r", prefix="bench-run-") as report:
        process = subprocess.Popen([sys.executable, "-c", _LAUNCHER, report.name, *cmd],
                                   cwd=PROJECT_ROOT, env=env, stdout=subprocess.PIPE, text=True)
        output = process.stdout.read() if process.stdout else ""
        failed = process.wait() != 0
        print(output, end="")
        if failed:
            raise SystemExit(f"bench: {' '.join(cmd[2:5])} failed")
        seconds, cpu_seconds, peak_kib = report.read().split()
    counted = re.search(r"([\d,]+) requests", output)
    requests = int(counted.group(1).replace(",", "")) if counted else 0
    return Run(float(seconds), float(cpu_seconds), int(peak_kib), requests)


def _load(env: dict[str, str], groups: list[str], as_of: str, fetch_only: bool = False,
          workers: int | None = None) -> Run:
    module = ["bench.loader", "--fetch-only"] if fetch_only else ["loaders", "graph"]
    cmd = [sys.executable, "-m", *module, "--as-of", as_of, "--no-progress"]
    for group in groups:
        cmd += ["--group", group]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    return _timed(cmd, env)


@contextlib.contextmanager
def _served(org: Path, warehouse: Path, latency_ms: int = 0) -> Iterator[dict[str, str]]:
    """The environment of a loader run against the emulator serving `org`."""
    credentials = json.loads((org / "manifest.json").read_text())["emulator"]
    env = {**os.environ, "DUCKDB_PATH": str(warehouse),
           "GRAPH_TENANT_ID": credentials["tenant_id"], "GRAPH_CLIENT_ID": credentials["client_id"],
           "GRAPH_CLIENT_SECRET": credentials["client_secret"]}
    emulator, urls = _start_emulator(org, env, options=("--latency-ms", str(latency_ms)))
    try:
        yield {**env, **urls}
    finally:
        emulator.terminate()
        emulator.wait(timeout=30)


def _median_run(runs: list[Run]) -> Run:
    """Each figure's median over `runs`; peak memory: the highest."""
    return Run(statistics.median(r.seconds for r in runs),
               statistics.median(r.cpu_seconds for r in runs),
               max(r.peak_kib for r in runs), runs[0].requests)


def _range(runs: list[Run], figure: str, scale: float = 1.0) -> str:
    values = [getattr(r, figure) * scale for r in runs]
    return f"[{min(values):.1f}-{max(values):.1f}]"


def _landed(warehouse: Path) -> tuple[int, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return (con.execute("select count(*) from raw_graph.messages").fetchone()[0],
                con.execute("select count(*) from raw_graph.events").fetchone()[0])


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
    parser = argparse.ArgumentParser(prog="python -m bench.loader --fetch-only")
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--group", action="append", default=[])
    parser.add_argument("--workers", type=int, default=graph.DEFAULT_WORKERS)
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


# A first year of a large organisation, and Graph's documented limits for it
PROJECTED_MAILBOXES = 2_500
PROJECTED_MESSAGES = 30_000  # per mailbox
MAILBOX_CONCURRENCY = 4  # requests in flight per mailbox
MAILBOX_REQUESTS_PER_10_MIN = 10_000


def _projection(run: Run, records: int, messages: int, mailboxes: int,
                gil_cpu_per_record: float, cores: int) -> float:
    """Seconds for a first load of PROJECTED_MAILBOXES x PROJECTED_MESSAGES, at the workers
    and latency of `run`, on `cores`: the longest of
    - Graph's latency: its requests (the measured ones per mailbox beyond full pages of
      messages, plus one per PAGE_SIZE messages) at the request rate `run` reached (on more
      cores than this machine's, a rate at least as high: an upper bound);
    - the CPU: the measured CPU per record over `cores`;
    - the interpreter: the fetching side's CPU per record (the fetch-only pass), on one core
      whatever the machine.
    Graph's limits do not bind: at most MAILBOX_CONCURRENCY requests per mailbox in flight
    allow PROJECTED_MAILBOXES x 4 at once, and a mailbox needs far fewer than
    MAILBOX_REQUESTS_PER_10_MIN requests in ten minutes (printed beside)."""
    fixed = max(0.0, run.requests / mailboxes - messages / mailboxes / graph.PAGE_SIZE)
    requests = PROJECTED_MAILBOXES * (fixed + PROJECTED_MESSAGES / graph.PAGE_SIZE)
    total = PROJECTED_MAILBOXES * PROJECTED_MESSAGES * records / messages
    waiting = requests / (run.requests / run.seconds)
    return max(waiting, run.cpu_seconds / records * total / cores, gil_cpu_per_record * total)


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--fetch-only"]:
        return _fetch_only(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.loader", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=50)
    parser.add_argument("--memory-mailboxes", type=int, default=200,
                        help="the larger organisation whose peak memory is printed (0: skip)")
    parser.add_argument("--messages-per-mailbox", type=int, default=6000)
    parser.add_argument("--latency-ms", type=int, default=300)
    parser.add_argument("--latency-workers", default="8,32,64",
                        help="the --workers of the latency runs (empty: skip them)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="first load, fetch-only pass and limit, each this many times "
                             "(medians printed)")
    parser.add_argument("--as-of", default="2026-06-30")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".bench")
    args = parser.parse_args(argv)

    work = args.workdir.resolve()
    org = work / "org"
    work.mkdir(parents=True, exist_ok=True)
    print(f"generating {args.mailboxes} mailboxes x {args.messages_per_mailbox} messages ...")
    _generate(org, args.mailboxes, args.messages_per_mailbox, args.as_of)
    groups = [json.loads((org / "manifest.json").read_text())["group_address"]]

    warehouse = work / "bench.duckdb"
    firsts: list[Run] = []
    fetches: list[Run] = []
    with _served(org, warehouse) as env:
        for round_ in range(max(1, args.rounds)):
            warehouse.unlink(missing_ok=True)
            firsts.append(_load(env, groups, args.as_of))
            if round_ == 0:
                second = _load(env, groups, args.as_of)
            fetches.append(_load(env, groups, args.as_of, fetch_only=True))
    messages, events = _landed(warehouse)
    limits = [_duckdb_limit(warehouse, work) for _ in firsts]
    records = messages + events
    first = _median_run(firsts)
    fetch = _median_run(fetches)
    limit_s, limit_rows = statistics.median(s for s, _ in limits), limits[0][1]
    ratios = [f.seconds / g.seconds for f, g in zip(firsts, fetches, strict=True)]
    loader_rate = records / first.seconds
    limit_rate = limit_rows / limit_s
    print(
        f"\nGraph loader, {args.mailboxes} mailboxes x one year (emulator on loopback); "
        f"medians of {len(firsts)} round(s), ranges in brackets\n"
        f"  landed            {messages:,} messages + {events:,} events\n"
        f"  first run         {first.seconds:.1f} s {_range(firsts, 'seconds')} = "
        f"{loader_rate:,.0f} records/s (whole CLI: token, resolution, folders, paging, landing)\n"
        f"  CPU               {first.cpu_seconds:.1f} s = "
        f"{first.cpu_seconds / records * 1e6:.1f} CPU-s per million records "
        f"{_range(firsts, 'cpu_seconds', 1e6 / records)} (target <= 30)\n"
        f"  peak memory       {first.peak_kib / 1024:,.0f} MiB (loader process, max RSS; "
        "target <= 600)\n"
        f"  fetch-only pass   {fetch.seconds:.1f} s {_range(fetches, 'seconds')} "
        f"({fetch.cpu_seconds:.1f} CPU-s): the first run took "
        f"{first.seconds / fetch.seconds:.2f} x (per round {min(ratios):.2f}-{max(ratios):.2f}; "
        "target <= 1.3)\n"
        f"  re-run (delta)    {second.seconds:.1f} s\n"
        f"  DuckDB limit      {limit_rows:,} records from NDJSON on disk in {limit_s:.2f} s "
        f"[{min(s for s, _ in limits):.2f}-{max(s for s, _ in limits):.2f}] "
        f"= {limit_rate:,.0f} records/s\n"
        f"  ratio             {loader_rate / limit_rate:.2f} of the limit (target >= 0.35)",
        flush=True,
    )

    if args.memory_mailboxes:
        big = work / f"org{args.memory_mailboxes}"
        print(f"\ngenerating {args.memory_mailboxes} mailboxes x {args.messages_per_mailbox} "
              "messages ...")
        _generate(big, args.memory_mailboxes, args.messages_per_mailbox, args.as_of)
        big_warehouse = work / "bench_memory.duckdb"
        big_warehouse.unlink(missing_ok=True)
        with _served(big, big_warehouse) as env:
            run = _load(env, [json.loads((big / "manifest.json").read_text())["group_address"]],
                        args.as_of)
        big_records = sum(_landed(big_warehouse))
        big_warehouse.unlink()
        print(f"  {args.memory_mailboxes} mailboxes    {big_records:,} records in "
              f"{run.seconds:.1f} s, {run.cpu_seconds / big_records * 1e6:.1f} CPU-s per "
              f"million records, peak memory {run.peak_kib / 1024:,.0f} MiB (at "
              f"{args.mailboxes}: {first.peak_kib / 1024:,.0f} MiB)", flush=True)

    workers = [int(w) for w in args.latency_workers.split(",") if w.strip()]
    if not workers:
        return 0
    # the larger organisation when there is one: more mailboxes than workers
    latency_org, latency_boxes = ((big, args.memory_mailboxes) if args.memory_mailboxes
                                  else (org, args.mailboxes))
    gil = fetch.cpu_seconds / records
    cores = os.cpu_count() or 1
    rows = []
    for count in workers:
        latency_warehouse = work / "bench_latency.duckdb"
        latency_warehouse.unlink(missing_ok=True)
        with _served(latency_org, latency_warehouse, args.latency_ms) as env:
            group = json.loads((latency_org / "manifest.json").read_text())["group_address"]
            run = _load(env, [group], args.as_of, workers=count)
        landed = _landed(latency_warehouse)
        latency_warehouse.unlink()
        rows.append((count, run, landed))
    per_mailbox = rows[0][1].requests / latency_boxes - rows[0][2][0] / latency_boxes / 1000
    print(
        f"\nWith {args.latency_ms} ms per request, {latency_boxes} mailboxes; projected: a "
        f"first year of {PROJECTED_MAILBOXES:,} mailboxes x {PROJECTED_MESSAGES:,} messages "
        f"(~{per_mailbox + PROJECTED_MESSAGES / 1000:.0f} requests per mailbox, Graph allows "
        f"{MAILBOX_REQUESTS_PER_10_MIN:,} per 10 min)\n"
        f"  {'workers':>7}  {'seconds':>7}  {'records/s':>9}  {'CPU-s/M':>7}  "
        f"{f'this machine ({cores} cores)':>24}  {'16 cores (at most)':>18}"
    )
    for count, run, (landed_messages, landed_events) in rows:
        landed_records = landed_messages + landed_events
        shape = (run, landed_records, landed_messages, latency_boxes, gil)
        print(f"  {count:>7}  {run.seconds:>7.1f}  {landed_records / run.seconds:>9,.0f}  "
              f"{run.cpu_seconds / landed_records * 1e6:>7.1f}  "
              f"{_hours(_projection(*shape, cores)):>24}  {_hours(_projection(*shape, 16)):>18}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
