"""Every failure mode of issue 16 (item 2), tried as a user meets it: the commands run in
processes of their own (`python -m loaders ...`, `dbt build`) against the bundled emulators on
loopback. Each check: the exit status, that the message is one line holding one sentence that
names the fix (no traceback), and that what was landed before is unchanged; where a run is
killed, that the next run lands raw tables identical to an uninterrupted load's and `dbt build`
an identical `office`.

What the user sees, mode by mode (W the warehouse, F a file, P a process id; "killed" exits
-9, 137 in a shell). Exit 2 is bad input or settings, 1 any other failure
(docs/configuration.md).

graph killed with SIGKILL mid-page (a page half received), between two batches, or during
  the final compaction (the last run's streams had all landed)
    killed: no message; the spool folder it leaves is removed by the next start. The next
    run: exit 0, "run <id>: 6 mailboxes, 42 streams (0 failed), <n> records landed, <n>
    requests (0 retried) in <s>s, into W" (stdout). Raw tables identical to an uninterrupted
    load's, none twice; raw_loader.load_runs marks the runs killed while loading `interrupted`:
    "the run stopped without finishing (killed or crashed) after <n> finished stream(s) and
    <n> landed record(s); the next run resumed where it stopped"
dbt build killed with SIGKILL (while it builds its third incremental model)
    killed: no message; the next `dbt build`: exit 0, `office` as the uninterrupted build's
a loader while dbt build holds the warehouse, or while another process reads it
    2  "error: the warehouse W is open in another process (process P): close it (a dbt run,
       a BI tool or a duckdb shell) and run again; nothing was changed."
dbt build while a loader holds the warehouse (tested in test_parquet_publish.py)
    2  dbt's "Encountered an error: / Database Error / Runtime Error" lines, then "The
       warehouse W is in use by <program> (PID P): a loader or another dbt run writes to it,
       or a tool keeps it open: wait for it to finish or stop it, then run dbt again; BI tools
       should read the Parquet copies in <PARQUET_DIR> instead."
429, 503 and 504 answers all along, tokens that die after 4 s
    0  the run's line, "... <n> requests (<k> retried) ...": everything landed, once
crm: accounts file with only its header
    2  "error: F: holds no accounts (only its header); landing it would empty the CRM: export
       the accounts again, or pass --allow-shrink if the CRM is to be emptied."
crm: a file of 0 bytes
    2  "error: F: is empty (0 bytes); export it again."
crm: a CSV that is not UTF-8 (Latin-1)
    2  "error: F: is not UTF-8 text (byte 23 is not); re-export it as UTF-8 (in Excel: Save
       As, 'CSV UTF-8')."
crm: duplicate ids
    2  "error: F: 1 account_id value(s) appear more than once (e.g. 'A1'); export one row per
       id."
crm: Parquet with wrong types (ids as bytes, names as lists)
    2  "error: F: columns account_id (BLOB), name (VARCHAR[]) cannot be read as text; export
       text, numbers or dates."
graph --mailbox ann.contoso.com
    2  "error: not an email address: 'ann.contoso.com'; use e.g. --mailbox ann@contoso.com or
       --group sales@contoso.com."
graph --as-of 15/03/2026
    2  "error: argument --as-of: '15/03/2026' is not a date: write it as YYYY-MM-DD, e.g.
       2026-11-23"
graph --as-of in the future
    2  "error: argument --as-of: <day> is in the future; the window ends today (<today>, UTC)
       at the latest: leave --as-of out or give a past date"
dbt build --vars '{as_of_date: "garbage"}' (also '2026-02-30')
    2  (dbt's) "Encountered an error: / Compilation Error in model int_periods (...)" (or
       another model that reads the date, whichever dbt parses first), then "var as_of_date
       must be a date written YYYY-MM-DD (or null for today), got 'garbage': write e.g. dbt
       build --vars '{as_of_date: "2024-06-30"}'", then dbt's three "> in macro ... / >
       called by ..." lines; refused while parsing, nothing opened
the warehouse folder not writable (as root: without CAP_DAC_OVERRIDE)
    2  "error: cannot write in <folder> (Permission denied), where the warehouse and its .wal
       log live: make the folder writable for this user, or set DUCKDB_PATH to a file in a
       folder you can write."
a full disk during a load (a tmpfs in a mount namespace of its own)
    1  "error: the disk is full (writing the warehouse W, its .wal beside it, or the temporary
       folder): free some space and run again; what was landed before stays, and a Graph load
       resumes where it stopped." (the batches that fitted stay; the next run completes)
DuckDB out of memory during a load (DUCKDB_MEMORY_LIMIT=4MB)
    1  "error: DuckDB ran out of memory writing the warehouse W (memory_limit 4MB): set
       DUCKDB_MEMORY_LIMIT higher (e.g. 1GB) and run again; what was landed before stays, and
       a Graph load resumes where it stopped." (the next run, at the loader's limit, completes)
leadspace without LEADSPACE_TOKEN
    2  "error: LEADSPACE_TOKEN not set: export the Leadspace perpetual key (the API key
       Leadspace sent for your program; see README, 'Leadspace firmographics')."
leadspace --map company_name=company (no such column)
    2  "error: --map: the CRM accounts have no column company, url; the columns are:
       account_id, name, website, city, country, industry."
leadspace --map with three optional fields (website, location, phone)
    2  "error: --map 'phone=phone': Leadspace takes company_name, website and location only
       (not 'phone')."
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from devtools.emulators.graph import Faults, GraphEmulator
from devtools.emulators.leadspace import LeadspaceEmulator

ROOT = Path(__file__).resolve().parents[2]
DBT = Path(sys.executable).parent / "dbt"
AS_OF = "2026-03-15"  # the shared synthetic organisation's last day (conftest.py)
GRAPH = ("graph", "--group", "sales@contoso.com", "--as-of", AS_OF, "--no-progress")
LEADSPACE_KEY = "failure-modes-leadspace-key"
PAGE_CAP = 10  # records per message page in the killed runs: 2 to 4 pages per folder


# ---------------------------------------------------------------------------- helpers
def loader_env(warehouse: Path, emulator: GraphEmulator | None = None) -> dict[str, str]:
    """The environment of a loader run: the warehouse, the Graph emulator's settings, and a
    spool folder (TMPDIR) of the test's own, beside the warehouse."""
    spool = warehouse.parent / "tmp"
    spool.mkdir(exist_ok=True)
    env = {**os.environ, "DUCKDB_PATH": str(warehouse), "TMPDIR": str(spool),
           "PYTHONUNBUFFERED": "1"}
    env.pop("PARQUET_DIR", None)
    if emulator is not None:
        env.update(emulator.environment())
    return env


def loaders(env: dict[str, str], *args: str, prefix: tuple[str, ...] = ()
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*prefix, sys.executable, "-m", "loaders", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def start_loader(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "loaders", *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def dbt_command(warehouse: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    """`dbt build --vars '{as_of_date: ...}'` as the README writes it (run from the project
    root), its target and logs in the warehouse's folder (dbt's environment variables), the
    Parquet copies beside it."""
    folder = warehouse.parent
    command = [str(DBT), "build", "--vars", f'{{as_of_date: "{AS_OF}"}}', *args]
    env = {**os.environ, "DUCKDB_PATH": str(warehouse), "PARQUET_DIR": str(folder / "parquet"),
           "DBT_TARGET_PATH": str(folder / "target"), "DBT_LOG_PATH": str(folder / "logs"),
           "DBT_USE_COLORS": "false", "PYTHONUNBUFFERED": "1"}
    return command, env


def dbt_build(warehouse: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command, env = dbt_command(warehouse, *args)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def one_sentence(stderr: str) -> str:
    """The user's message: a single line holding a single sentence, and no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"not one line:\n{stderr}"
    assert not re.search(r"[.!?] [A-Z]", lines[0]), f"more than one sentence: {lines[0]}"
    return lines[0]


def copy_warehouse(source: Path, target: Path) -> Path:
    """The warehouse file and its write-ahead log, if any (a killed writer leaves one)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    wal, target_wal = (p.with_name(p.name + ".wal") for p in (source, target))
    if wal.exists():
        shutil.copy(wal, target_wal)
    else:
        target_wal.unlink(missing_ok=True)
    return target


def _digest(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[int, str]:
    """Rows of `sql` and a digest of them, whatever their order."""
    return con.execute(
        "select count(*), md5(coalesce(string_agg(h, ',' order by h), '')) "
        f"from (select md5(cast(r as varchar)) as h from ({sql}) as r)"
    ).fetchone()


def raw_state(path: Path) -> dict[str, tuple[int, str]]:
    """Every raw table, every column: to check that a refused command changed nothing."""
    with duckdb.connect(str(path), read_only=True) as con:
        tables = [t for (t,) in con.execute(
            "select table_schema || '.' || table_name from information_schema.tables "
            "where table_schema like 'raw\\_%' escape '\\' order by 1").fetchall()]
        return {table: _digest(con, f"select * from {table}") for table in tables}


# What a load lands, without what differs between two runs landing the same data (run ids, load
# times; the stored links name the emulator's port and its opaque tokens: their state only)
LANDED = {
    "raw_crm.accounts": "select * exclude (_loaded_at) from raw_crm.accounts",
    "raw_crm.contacts": "select * exclude (_loaded_at) from raw_crm.contacts",
    "raw_graph.users": "select * exclude (_run_id, _loaded_at) from raw_graph.users",
    "raw_graph.mail_folders": "select * exclude (_run_id, _loaded_at) from raw_graph.mail_folders",
    "raw_graph.messages": "select * exclude (_run_id, _loaded_at) from raw_graph.messages",
    "raw_graph.events": "select * exclude (_run_id, _loaded_at) from raw_graph.events",
    "raw_graph.malformed_records":
        "select * exclude (_run_id, _loaded_at) from raw_graph.malformed_records",
    "raw_loader.graph_sync_state":
        "select mailbox_id, stream, window_start, next_link is null as finished, "
        "delta_link is not null as has_delta from raw_loader.graph_sync_state",
}


def landed(path: Path) -> dict[str, tuple[int, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        for table in ("messages", "events"):  # the raw tables' keys: no record twice
            assert con.execute(
                f"select count(*) - count(distinct (_mailbox_id, id)) from raw_graph.{table}"
            ).fetchone() == (0,), f"raw_graph.{table} holds a record twice"
        return {table: _digest(con, sql) for table, sql in LANDED.items()}


def message_keys(path: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return set(con.execute("select _mailbox_id, id from raw_graph.messages").fetchall())


def records(path: Path) -> int:
    """Messages and events landed."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("select (select count(*) from raw_graph.messages) "
                           "+ (select count(*) from raw_graph.events)").fetchone()[0]


def office(path: Path) -> tuple[list[str], dict[tuple, tuple]]:
    """`office` by its key (AccountId, AggregationLevel, AggregationStartDate)."""
    with duckdb.connect(str(path), read_only=True) as con:
        cursor = con.execute("select * from office")
        columns = [c[0] for c in cursor.description]
        rows = cursor.fetchall()
    key = [columns.index(c) for c in ("AccountId", "AggregationLevel", "AggregationStartDate")]
    by_key = {tuple(row[i] for i in key): row for row in rows}
    assert len(by_key) == len(rows), "office holds a key twice"
    return columns, by_key


def office_differences(left: tuple[list[str], dict], right: tuple[list[str], dict]) -> list[str]:
    (columns, rows), (other_columns, other_rows) = left, right
    assert columns == other_columns
    if rows.keys() != other_rows.keys():
        return [f"rows only in one: {sorted(rows.keys() ^ other_rows.keys())[:5]}"]
    found = []
    for key, row in rows.items():
        for column, a, b in zip(columns, row, other_rows[key], strict=True):
            # every cell exactly, the averages too: they are exact means of whole seconds,
            # the same bits whatever order the rows landed in (test_landing_order.py)
            same = a == b
            if not same:
                found.append(f"{key} {column}: {a!r} != {b!r}")
    return found


def wait_for(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def spools(folder: Path, pid: int) -> list[Path]:
    return list(folder.glob(f"graph-spool-{pid}-*"))


# ---------------------------------------------------------------------------- the emulators
class GatedGraph(GraphEmulator):
    """The Graph emulator serving message pages of PAGE_CAP records, with a gate: after
    `hold_after(n)` it answers n more message pages, then holds every later Graph answer, before
    its first byte or (`half`) after half its body, until `release()`. It records the message
    ids of the pages it answered whole since `hold_after`."""

    def __init__(self, org: Path) -> None:
        super().__init__(org)
        self._gate = threading.Lock()
        self._left: int | None = None
        self._half = False
        self._release = threading.Event()
        self.held = threading.Event()
        self.answered: set[tuple[str, str]] = set()

    def hold_after(self, pages: int, half: bool = False) -> None:
        with self._gate:
            self._left, self._half = pages, half
            self.answered = set()
        self.held.clear()
        self._release.clear()

    def release(self) -> None:
        with self._gate:
            self._left = None
        self._release.set()

    def _delta_page_size(self, req, default: int) -> int:
        return min(super()._delta_page_size(req, default), PAGE_CAP)

    def _send(self, handler, req, status, payload, content_type, headers) -> None:
        page = "/messages/delta" in req.path and status == 200
        with self._gate:
            hold = self._left is not None and self._left <= 0 and req.path.startswith("/v1.0/")
            if not hold and self._left is not None and page:
                self._left -= 1
                mailbox = req.path.split("/")[3]
                self.answered |= {(mailbox, r["id"]) for r in orjson.loads(payload)["value"]
                                  if "@removed" not in r}
            half = self._half
        if not hold:
            super()._send(handler, req, status, payload, content_type, headers)
            return
        handler.close_connection = True
        if half:  # the headers and half the body leave, then the answer stalls
            real = handler.wfile

            class HalfBody:
                def write(self, data: bytes) -> int:
                    if data is not payload:
                        return real.write(data)
                    real.write(data[: len(data) // 2])
                    real.flush()
                    return len(data)

                def flush(self) -> None:
                    real.flush()

            handler.wfile = HalfBody()
            try:
                super()._send(handler, req, status, payload, content_type, headers)
            finally:
                handler.wfile = real
        self.held.set()
        self._release.wait()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("failure_modes")


@pytest.fixture(scope="module")
def leadspace(synthetic_org: Path) -> Iterator[LeadspaceEmulator]:
    with LeadspaceEmulator(synthetic_org, key=LEADSPACE_KEY) as emulator:
        yield emulator


# ---------------------------------------------------------------------------- the baseline
@dataclass
class Baseline:
    crm_only: Path  # the CRM snapshot landed, nothing else
    loaded: Path  # then an uninterrupted Graph load, before dbt
    built: Path  # then dbt build
    landed: dict[str, tuple[int, str]]  # landed(loaded)
    office: tuple[list[str], dict]  # office(built)


@pytest.fixture(scope="module")
def baseline(synthetic_org: Path, work: Path) -> Baseline:
    """The shared organisation landed without interruption and built once."""
    warehouse = work / "baseline" / "w.duckdb"
    warehouse.parent.mkdir()
    with GraphEmulator(synthetic_org) as emulator:
        env = loader_env(warehouse, emulator)
        crm = loaders(env, "crm", "--accounts", str(synthetic_org / "crm" / "accounts.csv"),
                      "--contacts", str(synthetic_org / "crm" / "contacts.csv"))
        assert crm.returncode == 0, crm.stderr
        crm_only = copy_warehouse(warehouse, work / "crm_only" / "w.duckdb")
        graph = loaders(env, *GRAPH)
        assert graph.returncode == 0, graph.stderr
    loaded = copy_warehouse(warehouse, work / "loaded" / "w.duckdb")
    at = copy_warehouse(loaded, dbt_warehouse(work))
    build = dbt_build(at)
    assert build.returncode == 0, build.stdout[-3000:]
    built = copy_warehouse(at, work / "built" / "w.duckdb")
    return Baseline(crm_only, loaded, built, landed(loaded), office(built))


def dbt_warehouse(work: Path) -> Path:
    """Where this file's builds run, one at a time: dbt parses the project once for them all
    (a warehouse elsewhere is another profile to dbt, parsed again)."""
    return work / "dbt" / "w.duckdb"


def crm_files(synthetic_org: Path) -> tuple[str, ...]:
    """A `crm` load of real files: the loader checks its files before it opens the warehouse,
    so only files that exist reach the warehouse's lock."""
    return ("crm", "--accounts", str(synthetic_org / "crm" / "accounts.csv"),
            "--contacts", str(synthetic_org / "crm" / "contacts.csv"))


def fresh_copy(source: Path, tmp_path: Path) -> Path:
    return copy_warehouse(source, tmp_path / "w.duckdb")


# ---------------------------------------------------------------------------- kill -9 of graph
@dataclass
class Resumed:
    warehouse: Path
    kills: list[str]  # what was checked at each kill
    landed_by_killed_runs: list[int]  # records the two runs killed while loading had landed


@pytest.fixture(scope="module")
def resumed(synthetic_org: Path, work: Path, baseline: Baseline) -> Iterator[Resumed]:
    """A Graph load killed with SIGKILL mid-page, then (resumed) between two batches, then
    (resumed) during its final compaction, then run to its end; checked at each step."""
    warehouse = copy_warehouse(baseline.crm_only, work / "resumed" / "w.duckdb")
    wal = warehouse.with_name("w.duckdb.wal")
    emulator = GatedGraph(synthetic_org).start()
    env = loader_env(warehouse, emulator)
    spool = Path(env["TMPDIR"])
    kills: list[str] = []
    started: list[subprocess.Popen[str]] = []

    def start() -> subprocess.Popen[str]:
        started.append(start_loader(env, *GRAPH, "--workers", "2"))
        return started[-1]

    try:
        # 1. mid-page: 8 message pages answered, then every answer stalls half-way through
        emulator.hold_after(8, half=True)
        first = start()
        wait_for(emulator.held.is_set, "a page half sent")
        time.sleep(0.3)  # the writer lands what came whole meanwhile, or is landing it
        assert first.poll() is None, first.stderr.read()
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=30) == -signal.SIGKILL
        emulator.release()
        assert spools(spool, first.pid), "SIGKILL left no spool folder: nothing to sweep"
        after_first = message_keys(warehouse)
        assert len(after_first) < baseline.landed["raw_graph.messages"][0]
        assert landed(warehouse)  # no record twice
        by_first = records(warehouse)
        kills.append(f"mid-page: {len(after_first)} messages landed")

        # 2. between batches: 20 more pages answered whole, then no answer at all; killed
        # once the writer has landed every page it got (its log no longer grows)
        emulator.hold_after(20)
        second = start()
        wait_for(emulator.held.is_set, "the gate to close")
        sizes: list[int] = []

        def log_settled() -> bool:
            sizes.append(wal.stat().st_size if wal.exists() else -1)
            return len(sizes) > 75 and len(set(sizes[-75:])) == 1  # 1.5 s unchanged

        wait_for(log_settled, "the writer to land what it got")
        assert second.poll() is None, second.stderr.read()
        second.send_signal(signal.SIGKILL)
        assert second.wait(timeout=30) == -signal.SIGKILL
        emulator.release()
        assert not spools(spool, first.pid), "the next start did not sweep the killed spool"
        assert spools(spool, second.pid)
        after_second = message_keys(warehouse)
        assert after_first <= after_second  # what was landed stays
        assert emulator.answered <= after_second  # every page answered whole had landed
        assert len(after_second) < baseline.landed["raw_graph.messages"][0]
        by_second = records(warehouse) - by_first
        kills.append(f"between batches: {len(after_second)} messages landed")

        # 3. during the final compaction: a table of many partly filled row groups makes the
        # compaction last about a second (on this machine; slower ones take longer)
        with duckdb.connect(str(warehouse)) as con:
            con.execute("create table main.ballast (i bigint, s varchar)")
            for _ in range(10):
                con.execute("insert into main.ballast select range, md5(range::varchar) "
                            "from range(200000) where hash(range) % 7 <> 0")
            con.execute("set max_vacuum_tasks = 0")
            con.execute("checkpoint")
        third = start()
        for line in third.stderr:
            if line.startswith("compacting the raw tables"):
                third.send_signal(signal.SIGKILL)
                break
        assert third.wait(timeout=60) == -signal.SIGKILL, "the load ended before it was killed"
        assert wal.exists() and wal.stat().st_size > 0, "killed after the compaction ended"
        assert not spools(spool, second.pid)
        # its streams had all landed: the tables are the uninterrupted load's already
        assert landed(warehouse) == baseline.landed
        kills.append("during the compaction: every record landed before it")

        # 4. a last run: nothing left to land, compacts, succeeds
        fourth = loaders(env, *GRAPH)
        assert fourth.returncode == 0, fourth.stderr
        assert " 0 records landed" in fourth.stdout, fourth.stdout
        assert list(spool.iterdir()) == []
    finally:
        for process in started:  # none is left running, whatever failed
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stderr.close()
        emulator.release()
        emulator.stop()
    yield Resumed(warehouse, kills, [by_first, by_second])


def test_graph_killed_mid_page_between_batches_and_compacting_resumes_to_the_same_tables(
    resumed: Resumed, baseline: Baseline
):
    assert len(resumed.kills) == 3, resumed.kills
    assert landed(resumed.warehouse) == baseline.landed
    with duckdb.connect(str(resumed.warehouse), read_only=True) as con:
        runs = con.execute("select status, count(*) from raw_loader.load_runs "
                           "where stream = 'run' group by all order by all").fetchall()
        interrupted = con.execute(
            "select records, error from raw_loader.load_runs "
            "where stream = 'run' and status = 'interrupted' order by started_at").fetchall()
    # the two runs killed while loading are told apart, with how far they got; the one killed
    # while compacting had finished its load
    assert runs == [("interrupted", 2), ("succeeded", 2)]
    assert [n for n, _ in interrupted] == resumed.landed_by_killed_runs
    assert all("stopped without finishing (killed or crashed)" in e for _, e in interrupted)


# ---------------------------------------------------------------------------- kill -9 of dbt
def test_dbt_build_killed_then_run_again_builds_the_uninterrupted_office(
    resumed: Resumed, baseline: Baseline, work: Path, synthetic_org: Path
):
    """The first `dbt build` of the resumed warehouse is frozen (SIGSTOP) while it builds its
    third incremental model: a loader meanwhile is refused; then it is killed (SIGKILL), and
    the next build gives the `office` of the uninterrupted load's build, cell for cell."""
    warehouse = copy_warehouse(resumed.warehouse, dbt_warehouse(work))
    raw_before = raw_state(warehouse)
    command, env = dbt_command(warehouse)
    build = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    started = 0
    output = []
    for line in build.stdout:
        output.append(line)
        started += "START sql incremental model" in line
        if started == 3:
            build.send_signal(signal.SIGSTOP)
            break
    try:
        assert started == 3, "".join(output)
        # the loader while dbt build holds the warehouse
        refused = loaders(loader_env(warehouse), *crm_files(synthetic_org))
        assert refused.returncode == 2
        message = one_sentence(refused.stderr)
        assert message == (
            f"error: the warehouse {warehouse} is open in another process (process "
            f"{build.pid}): close it (a dbt run, a BI tool or a duckdb shell) and run again; "
            "nothing was changed.")
    finally:
        build.send_signal(signal.SIGKILL)
        build.wait(timeout=30)
        build.stdout.close()
    assert build.returncode == -signal.SIGKILL
    assert raw_state(warehouse) == raw_before

    again = dbt_build(warehouse)
    assert again.returncode == 0, again.stdout[-3000:]
    assert office_differences(office(warehouse), baseline.office) == []
    assert raw_state(warehouse) == raw_before


# ---------------------------------------------------------------------------- the warehouse held
def test_loader_while_another_process_reads_the_warehouse(baseline: Baseline, tmp_path: Path,
                                                          synthetic_org: Path):
    warehouse = fresh_copy(baseline.built, tmp_path)
    before = raw_state(warehouse)
    reader = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], "
         "read_only=True); print('open', flush=True); sys.stdin.read()", str(warehouse)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        refused = loaders(loader_env(warehouse), *crm_files(synthetic_org))
    finally:
        reader.communicate("")
    assert refused.returncode == 2
    assert one_sentence(refused.stderr) == (
        f"error: the warehouse {warehouse} is open in another process (process {reader.pid}): "
        "close it (a dbt run, a BI tool or a duckdb shell) and run again; nothing was changed.")
    assert raw_state(warehouse) == before


# ---------------------------------------------------------------------------- throttling storm
def test_throttling_storm_with_short_lived_tokens_lands_everything_once(
    synthetic_org: Path, baseline: Baseline, tmp_path: Path
):
    """429, 503 and 504 answers all along and tokens that die after 4 s: the load completes
    and lands what an undisturbed load lands, once. (test_graph_loader.py's faults test
    checks that every retry is counted and Retry-After honoured.) Not 2 s: on a loaded machine
    a token could then expire between its issue and Graph's check three times running, and
    the loader rightly refuses a fresh token Graph rejects (a CI run failed so)."""
    warehouse = fresh_copy(baseline.crm_only, tmp_path)
    crm_before = raw_state(warehouse)
    emulator = GraphEmulator(synthetic_org)
    emulator.faults = Faults(throttle_every=9, throttle_retry_after=1, unavailable_every=13,
                             unavailable_retry_after=1, gateway_timeout_every=17,
                             token_ttl_seconds=4)
    with emulator:
        done = loaders(loader_env(warehouse, emulator), *GRAPH)
        statuses = {r["status"] for r in emulator.requests}
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(r"window: 365 days \(.+\)\n"
                        r"run \S+: 6 mailboxes, 42 streams \(0 failed\), [\d,]+ records landed, "
                        r"[\d,]+ requests \([1-9][\d,]* retried\) in [\d.]+s, into .+\n",
                        done.stdout), done.stdout
    assert {401, 429, 503, 504} <= statuses  # tokens did expire mid-run
    assert landed(warehouse) == baseline.landed
    after = raw_state(warehouse)
    assert {t: after[t] for t in ("raw_crm.accounts", "raw_crm.contacts")} == {
        t: crm_before[t] for t in ("raw_crm.accounts", "raw_crm.contacts")}


# ---------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def bad_files(work: Path) -> Path:
    folder = work / "bad_files"
    folder.mkdir()
    (folder / "header_only.csv").write_text("account_id,name\n")
    (folder / "zero_bytes.csv").write_bytes(b"")
    (folder / "latin1.csv").write_bytes(
        "account_id,name\nA1,Société Générale\n".encode("latin-1"))
    (folder / "duplicates.csv").write_text("account_id,name\nA1,Acme\nA2,Globex\nA1,Acme Ltd\n")
    with duckdb.connect() as con:  # ids as bytes, names as lists: they would land garbled
        con.execute("copy (select 'A1'::blob as account_id, ['Umbrella'] as name, 'x' as city) "
                    f"to '{folder / 'wrong_types.parquet'}' (format parquet)")
    return folder


FUTURE = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
TODAY = datetime.now(UTC).date().isoformat()


def _crm(accounts: str) -> list[str]:
    return ["crm", "--accounts", f"{{files}}/{accounts}", "--contacts", "{org}/crm/contacts.csv"]


# (command, the one sentence it must print, exactly: {files}, {org} are the folders)
BAD_INPUT = {
    "crm accounts file empty (header only)": (
        _crm("header_only.csv"),
        "error: {files}/header_only.csv: holds no accounts (only its header); landing it would "
        "empty the CRM: export the accounts again, or pass --allow-shrink if the CRM is to be "
        "emptied."),
    "crm accounts file of 0 bytes": (
        _crm("zero_bytes.csv"),
        "error: {files}/zero_bytes.csv: is empty (0 bytes); export it again."),
    "crm accounts file not UTF-8": (
        _crm("latin1.csv"),
        "error: {files}/latin1.csv: is not UTF-8 text (byte 23 is not); re-export it as UTF-8 "
        "(in Excel: Save As, 'CSV UTF-8')."),
    "crm accounts file with duplicate ids": (
        _crm("duplicates.csv"),
        "error: {files}/duplicates.csv: 1 account_id value(s) appear more than once (e.g. 'A1'); "
        "export one row per id."),
    "crm Parquet file with wrong types": (
        _crm("wrong_types.parquet"),
        "error: {files}/wrong_types.parquet: columns account_id (BLOB), name (VARCHAR[]) cannot "
        "be read as text; export text, numbers or dates."),
    "graph --mailbox malformed": (
        ["graph", "--mailbox", "ann.contoso.com", "--mailbox", "bob@contoso.com", "--as-of",
         AS_OF, "--no-progress"],
        "error: not an email address: 'ann.contoso.com'; use e.g. --mailbox ann@contoso.com or "
        "--group sales@contoso.com."),
    "graph --as-of malformed": (
        ["graph", "--group", "sales@contoso.com", "--as-of", "15/03/2026", "--no-progress"],
        "error: argument --as-of: '15/03/2026' is not a date: write it as YYYY-MM-DD, e.g. "
        "2026-11-23"),
    "graph --as-of in the future": (
        ["graph", "--group", "sales@contoso.com", "--as-of", FUTURE, "--no-progress"],
        f"error: argument --as-of: {FUTURE} is in the future; the window ends today ({TODAY}, "
        "UTC) at the latest: leave --as-of out or give a past date"),
    "leadspace without LEADSPACE_TOKEN": (
        ["leadspace", "--consent", "--map", "company_name=name", "--no-progress"],
        "error: LEADSPACE_TOKEN not set: export the Leadspace perpetual key (the API key "
        "Leadspace sent for your program; see README, 'Leadspace firmographics')."),
    "leadspace --map of an unknown column": (
        ["leadspace", "--consent", "--map", "company_name=company", "--map", "website=url",
         "--no-progress"],
        "error: --map: the CRM accounts have no column company, url; the columns are: "
        "account_id, name, website, city, country, industry."),
    "leadspace --map of three optional fields": (
        ["leadspace", "--consent", "--map", "company_name=name", "--map", "website=website",
         "--map", "location=city", "--map", "phone=phone", "--no-progress"],
        "error: --map 'phone=phone': Leadspace takes company_name, website and location only "
        "(not 'phone')."),
}


@pytest.mark.parametrize("mode", list(BAD_INPUT))
def test_bad_input_is_one_sentence_exit_2_and_changes_nothing(
    mode: str, baseline: Baseline, bad_files: Path, synthetic_org: Path, tmp_path: Path,
    leadspace: LeadspaceEmulator,
):
    args, sentence = BAD_INPUT[mode]
    folders = {"files": str(bad_files), "org": str(synthetic_org)}
    warehouse = fresh_copy(baseline.built, tmp_path)
    before = raw_state(warehouse)
    asked = len(leadspace.requests)
    with GraphEmulator(synthetic_org) as emulator:
        env = loader_env(warehouse, emulator)
        env.update(LEADSPACE_API_URL=leadspace.url, LEADSPACE_TOKEN=LEADSPACE_KEY)
        if "LEADSPACE_TOKEN" in mode:
            del env["LEADSPACE_TOKEN"]
        done = loaders(env, *(arg.format(**folders) for arg in args))
        graph_requests = len(emulator.requests)
    assert done.returncode == 2, done.stderr
    assert one_sentence(done.stderr) == sentence.format(**folders)
    assert raw_state(warehouse) == before
    assert graph_requests == 0 and len(leadspace.requests) == asked  # nothing was asked


def test_dbt_build_with_a_malformed_as_of_date_changes_nothing(baseline: Baseline,
                                                               tmp_path: Path):
    """`dbt build --vars '{as_of_date: "garbage"}'`: refused while dbt parses the project,
    before it opens the warehouse. dbt frames the sentence with its own lines ('Encountered an
    error:', 'Compilation Error in model ...' and the macros that called it)."""
    warehouse = fresh_copy(baseline.built, tmp_path)
    before = raw_state(warehouse), office(warehouse)
    command, env = dbt_command(warehouse)
    command[command.index("--vars") + 1] = '{as_of_date: "garbage"}'
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output
    (line,) = [line for line in output.splitlines() if "as_of_date must be" in line]
    assert one_sentence(line.strip()) == (
        "var as_of_date must be a date written YYYY-MM-DD (or null for today), got 'garbage': "
        "write e.g. dbt build --vars '{as_of_date: \"2024-06-30\"}'")
    assert (raw_state(warehouse), office(warehouse)) == before


# ---------------------------------------------------------------------------- the machine
def _unwritable_prefix(folder: Path) -> tuple[str, ...]:
    """How to run a process that cannot write in the read-only `folder`: as is, or as root
    without CAP_DAC_OVERRIDE (which writes anywhere); skips the test when neither can be had."""
    probe = [sys.executable, "-c", "import sys, tempfile; tempfile.TemporaryFile(dir=sys.argv[1])",
             str(folder)]
    for prefix in ((), ("setpriv", "--bounding-set", "-dac_override,-dac_read_search")):
        try:
            tried = subprocess.run([*prefix, *probe], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            continue
        if tried.returncode != 0 and "PermissionError" in tried.stderr:
            return prefix
    pytest.skip("this user writes in a read-only folder (root with CAP_DAC_OVERRIDE) and "
                "setpriv cannot drop that capability here")


def test_warehouse_folder_not_writable(baseline: Baseline, tmp_path: Path, synthetic_org: Path):
    folder = tmp_path / "read_only"
    warehouse = copy_warehouse(baseline.built, folder / "w.duckdb")
    before = raw_state(warehouse)
    folder.chmod(0o555)
    try:
        prefix = _unwritable_prefix(folder)
        done = loaders(loader_env(warehouse) | {"TMPDIR": str(tmp_path)}, "crm", "--accounts",
                       str(synthetic_org / "crm" / "accounts.csv"), "--contacts",
                       str(synthetic_org / "crm" / "contacts.csv"), prefix=prefix)
    finally:
        folder.chmod(0o755)
    assert done.returncode == 2, done.stderr
    assert one_sentence(done.stderr) == (
        f"error: cannot write in {folder} (Permission denied), where the warehouse and its .wal "
        "log live: make the folder writable for this user, or set DUCKDB_PATH to a file in a "
        "folder you can write.")
    assert raw_state(warehouse) == before


def _small_disk(folder: Path) -> tuple[str, ...]:
    """A command prefix whose process sees a 64 KiB tmpfs mounted on `folder` (a mount
    namespace of its own: root, or an unprivileged user namespace); skips the test, with the
    reason, where the machine allows neither."""
    attempts = [("unshare", "--mount")] if os.geteuid() == 0 else []
    attempts.append(("unshare", "--user", "--map-root-user", "--mount"))
    reasons = []
    for prefix in attempts:
        try:
            tried = subprocess.run(
                [*prefix, "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs '{folder}'"],
                capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            reasons.append(str(exc))
            continue
        if tried.returncode == 0:
            return prefix
        reasons.append(f"{' '.join(prefix)}: {tried.stderr.strip()}")
    pytest.skip(f"no small disk to fill on this machine (a tmpfs needs a mount namespace): "
                f"{'; '.join(reasons)}")


def test_full_disk_during_a_load(baseline: Baseline, synthetic_org: Path, tmp_path: Path):
    """The warehouse on a tmpfs with 512 KiB to spare, less than a load needs: the load stops
    with a sentence, exit 1; what was landed stays, and on a disk with room the next run
    lands what an undisturbed load lands."""
    disk, out = tmp_path / "disk", tmp_path / "out"
    disk.mkdir()
    out.mkdir()
    prefix = _small_disk(disk)
    kib = baseline.crm_only.stat().st_size // 1024 + 512
    warehouse = disk / "w.duckdb"
    script = (f"mount -t tmpfs -o size={kib}k tmpfs '{disk}' && cp '{baseline.crm_only}' "
              f"'{warehouse}' && \"$@\"; status=$?; cp -a '{disk}/.' '{out}/'; exit $status")
    with GraphEmulator(synthetic_org) as emulator:
        env = loader_env(warehouse, emulator) | {"TMPDIR": str(tmp_path)}
        done = subprocess.run([*prefix, "sh", "-c", script, "sh", sys.executable, "-m",
                               "loaders", *GRAPH], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 1, done.stderr
        assert one_sentence(done.stderr) == (
            f"error: the disk is full (writing the warehouse {warehouse}, its .wal beside it, or "
            "the temporary folder): free some space and run again; what was landed before "
            "stays, and a Graph load resumes where it stopped.")
        kept = out / "w.duckdb"
        crm = {t: v for t, v in raw_state(kept).items() if t.startswith("raw_crm.")}
        assert crm == {t: v for t, v in raw_state(baseline.crm_only).items()
                       if t.startswith("raw_crm.")}
        assert len(message_keys(kept)) < baseline.landed["raw_graph.messages"][0]
        again = loaders(loader_env(kept, emulator), *GRAPH)
    assert again.returncode == 0, again.stderr
    assert landed(kept) == baseline.landed


def test_a_write_failing_in_the_last_batch_stops_the_load(tmp_path: Path):
    """What the full disk found: the writer failing on the batch that held close()'s stop used
    to wait for another stop, while close() waited for the writer, for ever."""
    from loaders.graph.landing import _STOP, Lander, PageItem

    lander = Lander(duckdb.connect(str(tmp_path / "w.duckdb")), "run")

    def disk_full(batch: list) -> None:
        raise OSError(28, "No space left on device")

    lander._land_pages = disk_full
    lander.put(PageItem("messages", "m", "messages:inbox", b'{"value": []}'))
    lander._queue.put(_STOP)  # as close() does: the stop right behind the page, one batch
    lander.start()
    lander._thread.join(timeout=30)
    assert not lander._thread.is_alive(), "the loader hangs when its last batch fails"
    with pytest.raises(OSError, match="No space left"):
        lander.close()


def test_duckdb_out_of_memory_during_a_load_is_a_sentence(
    baseline: Baseline, synthetic_org: Path, tmp_path: Path
):
    """DuckDB held to less memory than a batch of pages needs: the load stops with a sentence
    naming the setting, exit 1, no traceback; at the loader's own limit the next run lands
    what an undisturbed load lands."""
    warehouse = fresh_copy(baseline.crm_only, tmp_path)
    with GraphEmulator(synthetic_org) as emulator:
        starved = loaders(loader_env(warehouse, emulator) | {"DUCKDB_MEMORY_LIMIT": "4MB"},
                          *GRAPH)
        assert starved.returncode == 1, starved.stderr
        assert one_sentence(starved.stderr) == (
            f"error: DuckDB ran out of memory writing the warehouse {warehouse} (memory_limit "
            "4MB): set DUCKDB_MEMORY_LIMIT higher (e.g. 1GB) and run again; what was landed "
            "before stays, and a Graph load resumes where it stopped.")
        env = loader_env(warehouse, emulator)
        env.pop("DUCKDB_MEMORY_LIMIT", None)
        again = loaders(env, *GRAPH)
    assert again.returncode == 0, again.stderr
    assert landed(warehouse) == baseline.landed
