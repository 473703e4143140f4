"""`python -m loaders graph` against the bundled emulator over real HTTP on loopback.

Expected figures are computed from the synthetic organisation's files, not from the
emulator, so a loader that skips a folder, a page or a mailbox, or lands one twice, fails.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import orjson
import pytest

from loaders.cli import main
from loaders.graph import landing
from loaders.graph.load import EXCLUDED_FOLDERS

AS_OF = date(2026, 3, 15)
WINDOW_START = datetime(2025, 3, 16)
FORBIDDEN_FIELDS = {"body", "bodyPreview", "uniqueBody", "subject"}
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------- helpers
def selected_mailboxes(org: Path) -> list[str]:
    return json.loads((org / "manifest.json").read_text())["mailbox_ids"]


def expected_messages(org: Path, mailboxes: list[str]) -> set[tuple[str, str]]:
    """(mailbox, id) of every message the loader must land: real-mail folders, in window."""
    keys = set()
    for mailbox in mailboxes:
        folders = json.loads((org / "graph/mailboxes" / mailbox / "folders.json").read_text())
        excluded = {f["id"] for f in folders if f.get("_wellKnownName") in EXCLUDED_FOLDERS}
        changed = True
        while changed:  # descendants of excluded folders are excluded too
            before = len(excluded)
            excluded |= {f["id"] for f in folders if f.get("parentFolderId") in excluded}
            changed = len(excluded) != before
        for line in (org / "graph/mailboxes" / mailbox / "messages.ndjson").open("rb"):
            message = orjson.loads(line)
            received = message.get("receivedDateTime") or ""
            if message["parentFolderId"] not in excluded and received >= "2025-03-16T00:00:00Z":
                keys.add((mailbox, message["id"]))
    return keys


def query(path: Path, sql: str, parameters: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, parameters).fetchall()


@pytest.fixture
def env(graph_emulator, tmp_path, monkeypatch) -> Path:
    warehouse = tmp_path / "w.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(warehouse))
    # GRAPH_* and REQUESTS_CA_BUNDLE (the emulator's login is https, signed by its own
    # certificate authority)
    for name, value in graph_emulator.environment().items():
        monkeypatch.setenv(name, value)
    return warehouse


def load(*extra: str, group: str = "sales@contoso.com") -> int:
    return main(["graph", "--group", group, "--as-of", AS_OF.isoformat(), "--no-progress",
                 *extra])


# ---------------------------------------------------------------------------- full load
def test_full_load_lands_every_message_once_and_only_metadata(
    env, graph_emulator, synthetic_org, capsys
):
    mailboxes = selected_mailboxes(synthetic_org)
    assert load() == 0
    assert f"{len(mailboxes)} mailboxes" in capsys.readouterr().out

    landed = query(env, "select _mailbox_id, id from raw_graph.messages")
    assert len(landed) == len(set(landed))
    assert set(landed) == expected_messages(synthetic_org, mailboxes)
    assert query(env, "select count(*) from raw_graph.messages where isDraft") == [(0,)]
    assert sorted(r[0] for r in query(env, "select id from raw_graph.users")) == sorted(mailboxes)

    # every occurrence of the window, no series master, each calendar copy once
    events = query(env, "select _mailbox_id, id, type, start.timeZone from raw_graph.events")
    assert len(events) == len({(m, i) for m, i, _, _ in events}) > 0
    assert {t for _, _, t, _ in events} <= {"singleInstance", "occurrence", "exception"}
    assert {z for _, _, _, z in events} == {"UTC"}

    # nothing but metadata was asked for: every message and event request $selects, and
    # never a body, a preview or a subject
    data_requests = [
        r for r in graph_emulator.requests
        if r["path"].endswith(("/messages/delta", "/calendarView")) and "$select" in r["query"]
    ]
    assert data_requests
    for request in graph_emulator.requests:
        selected = set(request["query"].get("$select", "").split(","))
        assert not selected & FORBIDDEN_FIELDS, request
    runs = query(env, "select stream = 'run', status, count(*) from raw_loader.load_runs "
                      "group by all order by all")
    # 6 real-mail folders + calendar per mailbox, and the run's own row
    assert runs == [(False, "succeeded", len(mailboxes) * 7), (True, "succeeded", 1)]
    assert query(env, "select records, pages > 0, finished_at > started_at "
                      "from raw_loader.load_runs where stream = 'run'") == [
        (query(env, "select sum(records) from raw_loader.load_runs where stream <> 'run'")[0][0],
         True, True)]


def test_rerun_lands_nothing_and_delta_brings_exactly_the_changes(
    env, graph_emulator, synthetic_org, capsys
):
    assert load() == 0
    before = query(
        env, "select count(*), count(distinct (_mailbox_id, id)) from raw_graph.messages"
    )
    events_before = query(env, "select * exclude (_run_id, _loaded_at) from raw_graph.events "
                               "order by _mailbox_id, id")
    capsys.readouterr()
    assert load() == 0
    assert " 0 records landed" in capsys.readouterr().out
    assert query(env, "select count(*), count(distinct (_mailbox_id, id)) "
                      "from raw_graph.messages") == before
    assert query(env, "select * exclude (_run_id, _loaded_at) from raw_graph.events "
                      "order by _mailbox_id, id") == events_before

    mailbox = selected_mailboxes(synthetic_org)[0]
    victim = query(env, f"select id from raw_graph.messages where _mailbox_id = '{mailbox}' "
                        "order by id limit 1")[0][0]
    graph_emulator.delete_message(mailbox, victim)
    added = graph_emulator.add_message(mailbox, {
        "parentFolderId": "inbox",
        "internetMessageId": "<new-one@fabrikam.com>",
        "receivedDateTime": "2026-03-14T10:00:00Z", "sentDateTime": "2026-03-14T09:59:00Z",
        "subject": "never landed", "isDraft": False,
        "from": {"emailAddress": {"name": "N", "address": "n@fabrikam.com"}},
        "toRecipients": [{"emailAddress": {"name": "M", "address": "m@contoso.com"}}],
    })
    assert load() == 0
    rows = query(env, f"select id, _removed from raw_graph.messages where _mailbox_id = "
                      f"'{mailbox}' and id in ('{victim}', '{added['id']}') order by _removed")
    assert rows == sorted([(added["id"], False), (victim, True)], key=lambda r: r[1])
    assert query(env, "select count(*) from raw_graph.messages") == [(before[0][0] + 1,)]
    columns = [c[0] for c in query(env, "describe raw_graph.messages")]
    assert not FORBIDDEN_FIELDS & set(columns)


@pytest.mark.parametrize("snapshot_batch_bytes", [landing.SNAPSHOT_BATCH_BYTES, 1],
                         ids=["calendars-together", "each-calendar-alone"])
def test_calendar_changes_land_per_mailbox(
    env, graph_emulator, synthetic_org, monkeypatch, snapshot_batch_bytes
):
    """Calendars of several mailboxes land together: an event removed in one mailbox, one
    changed in another and one added are each told apart, counted in their own stream, and
    leave every other mailbox's events as they were. The same when each calendar lands as
    soon as it comes (the writer waits for SNAPSHOT_BATCH_BYTES of them, or the load's end)."""
    monkeypatch.setattr(landing, "SNAPSHOT_BATCH_BYTES", snapshot_batch_bytes)
    assert load() == 0
    (earlier,) = query(env, "select distinct run_id from raw_loader.load_runs")[0]
    first, second = [m for m in selected_mailboxes(synthetic_org)
                     if query(env, f"select count(*) from raw_graph.events "
                                   f"where _mailbox_id = '{m}'")[0][0] >= 2][:2]
    keep = ("select _mailbox_id, id, start.dateTime, _removed from raw_graph.events "
            f"where _mailbox_id not in ('{first}', '{second}') order by all")
    others = query(env, keep)
    (gone,) = query(env, f"select id from raw_graph.events where _mailbox_id = '{first}' "
                       "order by id limit 1")[0]
    moved, start = query(env, f"select id, start from raw_graph.events "
                              f"where _mailbox_id = '{second}' order by id limit 1")[0]
    graph_emulator.delete_event(first, gone)
    new_start = {"dateTime": "2026-03-10T08:00:00.0000000", "timeZone": "UTC"}
    graph_emulator.update_event(second, moved, {
        "start": new_start, "end": {"dateTime": "2026-03-10T09:00:00.0000000", "timeZone": "UTC"}})
    added = graph_emulator.add_event(first, {
        "iCalUId": "new-meeting", "start": new_start,
        "end": {"dateTime": "2026-03-10T08:30:00.0000000", "timeZone": "UTC"},
        "isCancelled": False, "isOrganizer": True,
        "organizer": {"emailAddress": {"name": "N", "address": "n@fabrikam.com"}},
        "attendees": [],
    })
    assert load() == 0
    assert query(env, f"select id, _removed from raw_graph.events where _mailbox_id = "
                      f"'{first}' and id in ('{gone}', '{added['id']}') order by id") == sorted(
        [(gone, True), (added["id"], False)])
    assert query(env, f"select start.dateTime, _removed from raw_graph.events "
                      f"where _mailbox_id = '{second}' and id = '{moved}'") == [
        ("2026-03-10T08:00:00.0000000", False)]
    assert start["dateTime"] != "2026-03-10T08:00:00.0000000"
    assert query(env, keep) == others
    runs = query(env, """select mailbox_id, records, removed from raw_loader.load_runs
        where stream = 'events' and run_id <> ?
          and (records > 0 or removed > 0) order by all""", [earlier])
    assert runs == sorted([(first, 1, 1), (second, 1, 0)])


# ---------------------------------------------------------------------------- faults
def test_throttling_outages_empty_pages_and_token_expiry_lose_nothing(
    env, graph_emulator, synthetic_org, capsys
):
    faults = graph_emulator.faults
    faults.throttle_every, faults.throttle_retry_after = 9, 1
    faults.unavailable_every = 13
    faults.gateway_timeout_every = 29
    faults.empty_pages_every = 3
    faults.token_ttl_seconds = 4  # tokens die after 4 s (the loader renews on 401)
    assert load() == 0

    mailboxes = selected_mailboxes(synthetic_org)
    assert set(query(env, "select _mailbox_id, id from raw_graph.messages")) == \
        expected_messages(synthetic_org, mailboxes)
    log = graph_emulator.requests.snapshot()
    statuses = [r["status"] for r in log]
    assert statuses.count(429) and statuses.count(503) and statuses.count(504)
    assert statuses.count(401)
    # every 429, 503 and 504 was sent again, and the run's summary counts them
    retried = statuses.count(429) + statuses.count(503) + statuses.count(504)
    assert f"({retried:,} retried)" in capsys.readouterr().out
    # Retry-After: 1 was honoured: the retry of a throttled request came a second later
    for i, request in enumerate(log):
        if request["status"] == 429:
            retry = next(r for r in log[i + 1:] if r["path"] == request["path"]
                         and r["query"] == request["query"])
            assert retry["started"] - request["started"] >= 0.95


def test_at_most_four_requests_per_mailbox_in_flight(env, graph_emulator):
    graph_emulator.faults.mailbox_concurrency_limit = 4
    graph_emulator.faults.latency_ms = 40
    assert load("--workers", "16") == 0
    throttled = [r for r in graph_emulator.requests if r["status"] == 429]
    assert throttled == []


def test_malformed_records_are_landed_or_kept_and_counted(env, graph_emulator, synthetic_org):
    mailbox = selected_mailboxes(synthetic_org)[1]
    odd = graph_emulator.add_message(mailbox, {
        "parentFolderId": "inbox", "internetMessageId": "<odd@x.com>",
        "receivedDateTime": "2026-03-01T10:00:00Z", "sentDateTime": "2026-03-01T10:00:00Z",
        "toRecipients": "not-a-list", "isDraft": False,
    })
    assert load() == 0
    kept = query(env, "select _mailbox_id, problem, record from raw_graph.malformed_records")
    assert [(k[0], json.loads(k[2])["id"]) for k in kept] == [(mailbox, odd["id"])]
    # the synthetic org's own malformed records (no `from`, null recipients) land as rows
    facts = json.loads((synthetic_org / "manifest.json").read_text())["facts"]
    assert facts["malformed_messages"]
    no_from = query(env, 'select count(*) from raw_graph.messages where "from" is null')[0][0]
    counted = query(env, "select sum(malformed) from raw_loader.load_runs")[0][0]
    assert no_from >= 1 and counted >= no_from + 1
    everything_else = expected_messages(synthetic_org, selected_mailboxes(synthetic_org))
    assert set(query(env, "select _mailbox_id, id from raw_graph.messages")) == everything_else


def test_ctrl_c_stops_a_load_soon_and_the_next_run_resumes(env, graph_emulator, synthetic_org):
    """SIGINT mid-load: the loader stops within seconds (not after every mailbox), says so,
    exits 130, records the streams it stopped as cancelled; the next run completes."""
    graph_emulator.faults.latency_ms = 300
    child = subprocess.Popen(
        [sys.executable, "-m", "loaders", "graph", "--group", "sales@contoso.com",
         "--as-of", AS_OF.isoformat(), "--no-progress", "--workers", "2"],
        cwd=ROOT, env=dict(os.environ), stderr=subprocess.PIPE, text=True,
        # as from a terminal: a shell without job control starts its background jobs (a CI
        # runner's, say) with SIGINT ignored, which the child would inherit and never see
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    # early in the load: 2 of 6 mailboxes at a time, each with its folders still to read (a
    # later signal could find every stream done and the loader compacting: see below)
    while len(graph_emulator.requests.matching("/messages/delta", 200)) < 2:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    served = len(graph_emulator.requests)
    child.send_signal(signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert child.returncode == 130
    assert err.strip().splitlines()[-1] == (
        "interrupted: what was landed stays; run again to resume.")
    # stopped at the streams' next page: a few requests in flight, not the rest of the load
    assert len(graph_emulator.requests) - served <= 12
    assert query(env, "select count(*) from raw_loader.load_runs where status = 'cancelled'"
                 )[0][0] > 1  # the stopped streams and the run itself
    assert query(env, "select count(*) from raw_loader.load_runs where status = 'succeeded' "
                      "and stream = 'events'")[0][0] < len(selected_mailboxes(synthetic_org))

    graph_emulator.faults.latency_ms = 0
    assert load() == 0
    landed = query(env, "select _mailbox_id, id from raw_graph.messages")
    assert len(landed) == len(set(landed))
    assert set(landed) == expected_messages(synthetic_org, selected_mailboxes(synthetic_org))


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--mailbox", "nobody@contoso.com", "--group", "sales@contoso.com"],
         "Graph knows no mailbox nobody@contoso.com"),
        (["--group", "no-such-group@contoso.com"], "Graph knows no group"),
    ],
)
def test_bad_selection_exits_2_with_a_sentence(env, graph_emulator, capsys, args, says):
    code = main(["graph", *args, "--as-of", AS_OF.isoformat(), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and says in err and "Traceback" not in err


def test_unreachable_graph_is_one_sentence_without_retry_noise(tmp_path):
    """Graph's login host refuses connections: a line per retry on stdout, then one sentence
    naming the setting to check, exit 2; urllib3's retry warnings stay out of it (the give-up
    budget shortened to 3 s; tests/python/test_unreachable_servers.py runs the default)."""
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = subprocess.run(
        [sys.executable, "-m", "loaders", "graph", "--group", "sales@contoso.com",
         "--as-of", AS_OF.isoformat(), "--no-progress"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "DUCKDB_PATH": str(tmp_path / "w.duckdb"),
             "LOADERS_CONNECT_GIVE_UP_SECONDS": "3",
             "GRAPH_API_URL": f"http://127.0.0.1:{port}/v1.0",
             "GRAPH_LOGIN_URL": f"https://127.0.0.1:{port}", "GRAPH_TENANT_ID": "t",
             "GRAPH_CLIENT_ID": "c", "GRAPH_CLIENT_SECRET": "not-a-real-secret"})
    assert result.returncode == 2, result.stderr
    [sentence] = result.stderr.strip().splitlines()
    assert sentence.startswith(f"error: cannot reach the identity platform at 127.0.0.1:{port} "
                               "(connection refused; gave up after "), sentence
    assert "check GRAPH_LOGIN_URL" in sentence
    assert "retrying, attempt 2 of 5" in result.stdout
    assert "not-a-real-secret" not in result.stdout + result.stderr


def test_one_mailbox_is_refused(env, graph_emulator, synthetic_org, capsys):
    users = json.loads((synthetic_org / "graph/users.json").read_text())
    first = next(u for u in users if u["id"] == selected_mailboxes(synthetic_org)[0])
    code = main(["graph", "--mailbox", first["userPrincipalName"], "--mailbox",
                 first["mail"].upper(), "--as-of", AS_OF.isoformat(), "--no-progress"])
    assert code == 2
    assert "resolves to 1 mailbox;" in capsys.readouterr().err
    assert query(env, "select count(*) from raw_graph.messages") == [(0,)]


def test_more_than_2500_mailboxes_is_refused(tmp_path, monkeypatch, capsys):
    from devtools.emulators.graph import GraphEmulator

    org = tmp_path / "big"
    (org / "graph").mkdir(parents=True)
    users = [{"id": f"00000000-0000-4000-8000-{i:012d}", "displayName": f"U {i}",
              "mail": f"u{i}@contoso.com", "userPrincipalName": f"u{i}@contoso.com"}
             for i in range(2501)]
    (org / "graph/users.json").write_text(json.dumps(users))
    (org / "graph/groups.json").write_text(json.dumps([{
        "id": "11111111-1111-4111-8111-111111111111", "displayName": "Everyone",
        "mail": "everyone@contoso.com", "members": [u["id"] for u in users]}]))
    (org / "manifest.json").write_text(json.dumps({"org_domain": "contoso.com", "emulator": {
        "tenant_id": "t-1", "client_id": "c-1", "client_secret": "s-1"}}))
    with GraphEmulator(org, tenant_id="t-1", client_id="c-1", client_secret="s-1") as emulator:
        for name, value in {"DUCKDB_PATH": str(tmp_path / "w.duckdb"),
                            **emulator.environment()}.items():
            monkeypatch.setenv(name, value)
        assert load(group="everyone@contoso.com") == 2
    assert "resolves to 2,501 mailboxes" in capsys.readouterr().err


def test_wrong_secret_exits_2_without_echoing_it(env, graph_emulator, monkeypatch, capsys):
    monkeypatch.setenv("GRAPH_CLIENT_SECRET", "s3cr3t-wrong-value")
    assert load() == 2
    err = capsys.readouterr().err
    assert "invalid_client" in err and "GRAPH_CLIENT_SECRET" in err
    assert "s3cr3t-wrong-value" not in err


def test_missing_settings_exit_2(env, monkeypatch, capsys):
    monkeypatch.delenv("GRAPH_TENANT_ID")
    assert load() == 2
    assert "GRAPH_TENANT_ID not set" in capsys.readouterr().err


def test_missing_permission_exits_2_with_the_permissions_to_grant(
    env, graph_emulator, synthetic_org, capsys
):
    graph_emulator.faults.forbidden_mailboxes = {selected_mailboxes(synthetic_org)[2]}
    assert load() == 2
    err = capsys.readouterr().err
    assert "Graph denied access (ErrorAccessDenied" in err and "Mail.ReadBasic.All" in err


def test_window_start_is_365_days_inclusive():
    from loaders.graph.load import Window

    window = Window(AS_OF)
    assert window.start == WINDOW_START
    assert window.end - window.start == timedelta(days=365)


def test_stored_links_of_another_graph_url_are_not_followed(
    env, graph_emulator, synthetic_org, monkeypatch
):
    """A warehouse loaded through one GRAPH_API_URL (here the emulator on another port, as
    when `make demo` or `make test` runs again) reads its folders again through the new
    one instead of following stored links to a server that is gone; nothing is duplicated."""
    from devtools.emulators.graph import GraphEmulator

    assert load() == 0
    before = query(env, "select count(*) from raw_graph.messages")
    graph_emulator.stop()
    second = GraphEmulator(synthetic_org).start()
    try:
        for name, value in second.environment().items():
            monkeypatch.setenv(name, value)
        assert load() == 0
        assert query(env, "select count(*), count(distinct (_mailbox_id, id)) "
                          "from raw_graph.messages") == [(before[0][0], before[0][0])]
        # every stored link now points at the server that answered
        links = query(env, "select coalesce(next_link, delta_link) from "
                           "raw_loader.graph_sync_state where stream != 'events'")
        assert links and all(link.startswith(second.graph_url) for (link,) in links)
    finally:
        second.stop()


def test_window_is_the_dbt_projects_window_days(tmp_path, monkeypatch):
    """The loader reads as far back as the models count: dbt_project.yml's var window_days."""
    from datetime import date, datetime

    from loaders import settings
    from loaders.errors import BadInput
    from loaders.graph.load import Window

    assert settings.window_days() == 365  # as shipped
    monkeypatch.delenv("ACCOUNT_ENGAGEMENT_WINDOW_DAYS", raising=False)
    monkeypatch.setenv("DBT_PROJECT_DIR", str(tmp_path))  # the dbt project the loader follows
    settings.window_days.cache_clear()
    try:
        (tmp_path / "dbt_project.yml").write_text("name: x\nvars:\n  window_days: 30\n")
        assert Window(date(2026, 6, 30)).start == datetime(2026, 6, 1)
        settings.window_days.cache_clear()
        (tmp_path / "dbt_project.yml").write_text("name: x\nvars:\n  window_days: 'a year'\n")
        with pytest.raises(BadInput, match="window_days must be a whole number"):
            settings.window_days()
    finally:
        settings.window_days.cache_clear()


def test_ctrl_c_while_compacting_exits_130_with_the_load_kept(env, graph_emulator, monkeypatch,
                                                              capsys):
    """Ctrl+C after the last page, while the raw tables are compacted: DuckDB stops the
    statement with its InterruptException; the loader says it was interrupted, exits 130."""
    import duckdb as duckdb_module

    from loaders import cli

    def interrupted(con):
        raise duckdb_module.InterruptException("INTERRUPT Error: Interrupted!")

    monkeypatch.setattr(cli, "compact", interrupted)
    assert load() == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "interrupted: what was landed stays; run again to resume.")
    assert query(env, "select count(*) from raw_graph.messages")[0][0] > 0
