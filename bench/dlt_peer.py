"""`make bench-peer`: our Graph loader against dlt's REST API source, on the same mailboxes of
the same emulator, landed counts checked equal (issue 15, item 4).

1. A synthetic organisation (cached in `.bench/peer-org<N>`) served by the bundled emulator.
2. Our loader: `python -m loaders graph` into a fresh warehouse.
3. dlt (pinned, in its own venv `.bench/dlt-venv`, created on the first run): `rest_api_source`
   reading exactly what our loader read: the (mailbox, folder) pairs it loaded
   (raw_graph.mail_folders, excluded folders left out) with the same message delta query
   (`$select`, `$filter` from the stored window start, `Prefer: odata.maxpagesize=1000`,
   `@odata.nextLink` followed) and each mailbox's calendarView of the same window; OAuth client
   credentials against the emulator; destination DuckDB through dlt's parquet path; in each of
   the configurations below (dlt's performance docs: parallelized resources, extract workers,
   normalize workers, file rotation), each into a fresh pipeline directory and database.
4. Landed counts: distinct (mailbox, message id) and (mailbox, event id) of each dlt run must
   equal ours (not removed), or the script fails.

`--rounds N` repeats the whole (ours, then each configuration) N times and reports medians:
on a shared machine wall times move with the load. Each run is a process of its own, timed
with os.wait4: wall time, CPU (user + system, its children included) and peak memory (max RSS
of the largest process; beside it the peak of the process tree's summed RSS, sampled every
50 ms: dlt normalizes in worker processes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from bench.loader import _generate, _served
from loaders.graph.load import EVENT_SELECT, MESSAGE_SELECT, Window, iso
from loaders.settings import PROJECT_ROOT

HERE = Path(__file__).resolve().parent
# dlt and, pinned alike, the DuckDB and pyarrow of the product (pyproject.toml)
DLT_VERSION = "1.31.0"
DLT_REQUIREMENTS = (f"dlt[duckdb,parquet]=={DLT_VERSION}", "duckdb==2.0.0", "pyarrow==26.0.1")

# name -> (description, dlt environment, rest_api_source options)
ROTATE = {"EXTRACT__DATA_WRITER__FILE_MAX_ITEMS": "100000",
          "NORMALIZE__DATA_WRITER__FILE_MAX_ITEMS": "100000"}
CONFIGS: dict[str, tuple[str, dict[str, str], dict]] = {
    "docs": ("parallelized, 5 extract + 2 normalize workers, files rotated at 100k",
             {"EXTRACT__WORKERS": "5", "NORMALIZE__WORKERS": "2", **ROTATE},
             {"parallelized": True, "max_table_nesting": None}),
    "w16": ("parallelized, 16 extract + 2 normalize workers, files rotated at 100k",
            {"EXTRACT__WORKERS": "16", "NORMALIZE__WORKERS": "2", **ROTATE},
            {"parallelized": True, "max_table_nesting": None}),
    "w16-flat": ("as w16, max_table_nesting=0 (nested fields as JSON, no child tables)",
                 {"EXTRACT__WORKERS": "16", "NORMALIZE__WORKERS": "2", **ROTATE},
                 {"parallelized": True, "max_table_nesting": 0}),
    "w16-flat-n1": ("as w16-flat, normalized in the main process (normalize workers 1)",
                    {"EXTRACT__WORKERS": "16", "NORMALIZE__WORKERS": "1", **ROTATE},
                    {"parallelized": True, "max_table_nesting": 0}),
}


@dataclass
class Run:
    seconds: float
    cpu_seconds: float
    peak_kib: int  # max RSS of the largest process (os.wait4)
    tree_kib: int  # peak of the summed RSS of the process tree (sampled)


def _tree_rss_kib(root: int) -> int:
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{pid}/task").iterdir():
                pending += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def _timed(cmd: list[str], env: dict[str, str]) -> Run:
    started = time.perf_counter()
    process = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss_kib(process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"bench-peer: {' '.join(cmd[:4])} ... failed")
    return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss,
               max(peak[0], usage.ru_maxrss))


def _dlt_python(work: Path) -> Path:
    """dlt's own venv (never the product's), created or refreshed when the pins change."""
    venv = work / "dlt-venv"
    python = venv / "bin" / "python"
    stamp = venv / "bench-requirements.txt"
    wanted = "\n".join(DLT_REQUIREMENTS)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"bench-peer: creating {venv} with {' '.join(DLT_REQUIREMENTS)} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *DLT_REQUIREMENTS], check=True)
    stamp.write_text(wanted)
    return python


def _work_list(warehouse: Path) -> dict:
    """What our loader read: its (mailbox, folder) pairs, mailboxes, window; what it landed."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        def rows(sql: str) -> list:
            return con.execute(sql).fetchall()

        folders = rows("select _mailbox_id, id from raw_graph.mail_folders "
                       "where _excluded_reason is null order by all")
        mailboxes = [m for (m,) in rows("select id from raw_graph.users order by id")]
        starts = rows("select distinct window_start from raw_loader.graph_sync_state "
                      "where stream like 'messages:%'")
        messages = rows("select count(distinct (_mailbox_id, id)) from raw_graph.messages "
                        "where not coalesce(_removed, false)")[0][0]
        events = rows("select count(distinct (_mailbox_id, id)) from raw_graph.events "
                      "where not coalesce(_removed, false)")[0][0]
        # every message our loader landed came from one of these folders
        strays = rows("select count(*) from raw_graph.messages m where not exists (select 1 "
                      "from raw_graph.mail_folders f where f._mailbox_id = m._mailbox_id "
                      "and f.id = m._folder_id and f._excluded_reason is null)")[0][0]
    if len(starts) != 1 or strays:
        raise SystemExit(f"bench-peer: unexpected warehouse: window starts {starts}, "
                         f"{strays} messages outside the listed folders")
    return {"folders": folders, "mailboxes": mailboxes, "window_start": iso(starts[0][0]),
            "messages": messages, "events": events}


def _dlt_landed(database: Path) -> tuple[int, int]:
    with duckdb.connect(str(database), read_only=True) as con:
        return (
            con.execute("select count(distinct (_folders_mailbox_id, id)) "
                        "from graph.messages").fetchone()[0],
            con.execute("select count(distinct (_mailboxes_id, id)) "
                        "from graph.events").fetchone()[0],
        )


def _dlt_run(name: str, env: dict[str, str], work_list: dict, window: Window,
             dlt_python: Path, run_dir: Path, expected: tuple[int, int]) -> Run:
    """One dlt configuration into a fresh pipeline directory and database, counts checked."""
    description, dlt_env, options = CONFIGS[name]
    run_dir.mkdir()
    spec = {
        "api_url": env["GRAPH_API_URL"],
        "token_url": f"{env['GRAPH_LOGIN_URL']}/{env['GRAPH_TENANT_ID']}/oauth2/v2.0/token",
        "client_id": env["GRAPH_CLIENT_ID"], "client_secret": env["GRAPH_CLIENT_SECRET"],
        **{k: work_list[k] for k in ("folders", "mailboxes", "window_start")},
        "window_end": iso(window.end),
        "message_select": MESSAGE_SELECT, "event_select": EVENT_SELECT,
        "run": {"pipelines_dir": str(run_dir / "pipelines"),
                "database": str(run_dir / "dlt.duckdb"), **options},
    }
    (run_dir / "spec.json").write_text(json.dumps(spec))
    print(f"\n==> dlt {name}: {description}", flush=True)
    process_env = {**os.environ, "RUNTIME__DLTHUB_TELEMETRY": "false",
                   "RUNTIME__LOG_LEVEL": "ERROR",
                   # the emulator's login is https, signed by its own certificate authority
                   "REQUESTS_CA_BUNDLE": env["REQUESTS_CA_BUNDLE"], **dlt_env}
    run = _timed([str(dlt_python), str(HERE / "dlt_side.py"), str(run_dir / "spec.json")],
                 process_env)
    landed = _dlt_landed(run_dir / "dlt.duckdb")
    if landed != expected:
        raise SystemExit(
            f"bench-peer: LANDED COUNTS DIFFER: dlt {name} landed {landed[0]:,} messages "
            f"+ {landed[1]:,} events, ours {expected[0]:,} + {expected[1]:,}")
    print(f"    landed {landed[0]:,} messages + {landed[1]:,} events: equal to ours", flush=True)
    shutil.rmtree(run_dir, ignore_errors=True)
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dlt_peer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mailboxes", type=int, default=20)
    parser.add_argument("--messages-per-mailbox", type=int, default=6000)
    parser.add_argument("--as-of", default="2026-06-30")
    parser.add_argument("--configs", default=",".join(CONFIGS),
                        help=f"dlt configurations to run, of: {', '.join(CONFIGS)}")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run everything this many times, interleaved; medians reported")
    parser.add_argument("--workdir", type=Path, default=PROJECT_ROOT / ".bench")
    args = parser.parse_args(argv)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    if unknown := [c for c in configs if c not in CONFIGS]:
        parser.error(f"unknown configurations {unknown}; known: {', '.join(CONFIGS)}")

    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    dlt_python = _dlt_python(work)
    org = work / f"peer-org{args.mailboxes}"
    print(f"bench-peer: {args.mailboxes} mailboxes x {args.messages_per_mailbox} messages ...",
          flush=True)
    _generate(org, args.mailboxes, args.messages_per_mailbox, args.as_of)
    manifest = json.loads((org / "manifest.json").read_text())
    peer = work / "peer"
    shutil.rmtree(peer, ignore_errors=True)
    peer.mkdir()
    window = Window(date.fromisoformat(args.as_of))
    load_before = os.getloadavg()[0]

    runs: dict[str, list[Run]] = {"ours": [], **{name: [] for name in configs}}
    expected: tuple[int, int] | None = None
    with _served(org, peer / "ours-1.duckdb") as env:
        for round_ in range(1, args.rounds + 1):
            print(f"\n==> round {round_}/{args.rounds}: our loader", flush=True)
            warehouse = peer / f"ours-{round_}.duckdb"
            runs["ours"].append(_timed(
                [sys.executable, "-m", "loaders", "graph", "--as-of", args.as_of,
                 "--no-progress", "--group", manifest["group_address"]],
                {**env, "DUCKDB_PATH": str(warehouse)},
            ))
            work_list = _work_list(warehouse)
            landed = (work_list["messages"], work_list["events"])
            if expected not in (None, landed):
                raise SystemExit(f"bench-peer: LANDED COUNTS DIFFER between our runs: {landed} "
                                 f"vs {expected}")
            expected = landed
            print(f"    landed {landed[0]:,} messages + {landed[1]:,} events from "
                  f"{len(work_list['folders'])} folders of {len(work_list['mailboxes'])} "
                  "mailboxes", flush=True)
            for name in configs:
                runs[name].append(_dlt_run(name, env, work_list, window, dlt_python,
                                           peer / f"dlt-{name}-{round_}", expected))

    assert expected is not None
    records = sum(expected)
    print(f"\nOur loader vs dlt {DLT_VERSION} rest_api_source (parquet path), {args.mailboxes} "
          f"mailboxes, {records:,} records (landed counts equal), emulator on loopback, "
          f"{os.cpu_count()} cores; {args.rounds} round(s): median wall and CPU, highest peaks; "
          f"load average before: {load_before:.1f}")
    print(f"  {'loader':<16} {'wall s':>7} {'records/s':>10} {'CPU s':>6} {'peak MiB':>9} "
          f"{'tree MiB':>9}  configuration")
    summary = {name: Run(statistics.median(r.seconds for r in rs),
                         statistics.median(r.cpu_seconds for r in rs),
                         max(r.peak_kib for r in rs), max(r.tree_kib for r in rs))
               for name, rs in runs.items()}
    for name, run in summary.items():
        label, description = (("ours", "python -m loaders graph (default --workers)")
                              if name == "ours" else (f"dlt {name}", CONFIGS[name][0]))
        walls = "/".join(f"{r.seconds:.1f}" for r in runs[name])
        print(f"  {label:<16} {run.seconds:>7.1f} {records / run.seconds:>10,.0f} "
              f"{run.cpu_seconds:>6.1f} {run.peak_kib / 1024:>9,.0f} {run.tree_kib / 1024:>9,.0f}"
              f"  {description}" + (f" [walls {walls}]" if args.rounds > 1 else ""))
    ours = summary.pop("ours")
    if summary:
        best_name, best = min(summary.items(), key=lambda item: item[1].seconds)
        print(f"  ours vs dlt's best ({best_name}): {best.seconds / ours.seconds:.1f} x faster "
              f"(goal >= 5 x), {best.cpu_seconds / ours.cpu_seconds:.1f} x less CPU; load "
              f"average after: {os.getloadavg()[0]:.1f} (wall times move with it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
