"""The Graph emulator over real HTTP: auth, $select, paging, $filter, delta, calendarView,
groups, faults."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
import requests
from conftest import ROOT, SYNTHETIC_AS_OF

from devtools.emulators.graph import WINDOWS_TO_IANA, GraphEmulator
from loaders.schema import EVENT_FIELDS, MESSAGE_FIELDS

SCOPE = "https://graph.microsoft.com/.default"
HEAVY = {"body", "subject", "bodyPreview", "uniqueBody"}


# ---------------------------------------------------------------------------- helpers
def ndjson(org: Path, user_id: str, name: str) -> list[dict[str, Any]]:
    path = org / "graph" / "mailboxes" / user_id / f"{name}.ndjson"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def folder_id(org: Path, user_id: str, well_known: str) -> str:
    folders = orjson.loads((org / "graph" / "mailboxes" / user_id / "folders.json").read_bytes())
    return next(f["id"] for f in folders if f["_wellKnownName"] == well_known)


def follow(session: requests.Session, url: str, params: dict[str, str] | None = None,
           headers: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], list[dict]]:
    """Follow nextLinks verbatim; returns (all items, every page body)."""
    items, pages = [], []
    while url:
        response = session.get(url, params=params, headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        page = response.json()
        pages.append(page)
        items.extend(page["value"])
        url, params = page.get("@odata.nextLink"), None
    return items, pages


def token_request(emu: GraphEmulator, tenant: str | None = None, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_id": emu.client_id,
            "client_secret": emu.client_secret, "scope": SCOPE, **form}
    return requests.post(f"{emu.login_url}/{tenant or emu.tenant_id}/oauth2/v2.0/token",
                         data=data, timeout=10, verify=emu.ca_bundle)


def first_mailbox(emu: GraphEmulator) -> str:
    return emu.mailbox_ids[0]


def to_utc(value: dict[str, str]) -> datetime:
    local = datetime.fromisoformat(value["dateTime"][:26])
    zone = ZoneInfo(WINDOWS_TO_IANA[value["timeZone"]])
    return local.replace(tzinfo=zone).astimezone(UTC)


# ---------------------------------------------------------------------------- auth
def test_token_flow_and_errors(graph_emulator: GraphEmulator) -> None:
    ok = token_request(graph_emulator)
    assert ok.status_code == 200
    body = ok.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["ext_expires_in"] == 3600 and len(body["access_token"]) > 30

    wrong = token_request(graph_emulator, client_secret="nope")
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.json()["error_codes"] == [7000215]
    assert wrong.json()["error_description"].startswith("AADSTS7000215: Invalid client secret")

    tenant = token_request(graph_emulator, tenant="other-tenant")
    assert (tenant.status_code, tenant.json()["error"]) == (400, "invalid_request")
    assert tenant.json()["error_codes"] == [90002]

    client = token_request(graph_emulator, client_id="someone-else")
    assert (client.status_code, client.json()["error"]) == (400, "unauthorized_client")
    assert client.json()["error_codes"] == [700016]

    secrets_seen = [str(r) for r in graph_emulator.requests]
    assert not any(graph_emulator.client_secret in s for s in secrets_seen)


def test_bearer_required_and_expiry(graph_emulator: GraphEmulator) -> None:
    url = f"{graph_emulator.graph_url}/users/{first_mailbox(graph_emulator)}"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    error = missing.json()["error"]
    assert error["code"] == "InvalidAuthenticationToken"
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert missing.headers["request-id"] == error["innerError"]["request-id"]

    bogus = requests.get(url, headers={"Authorization": "Bearer not-a-token"}, timeout=10)
    assert bogus.status_code == 401

    token = token_request(graph_emulator).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=auth, timeout=10).status_code == 200
    graph_emulator.faults.token_ttl_seconds = 0
    expired = requests.get(url, headers=auth, timeout=10)
    assert expired.status_code == 401
    assert expired.json()["error"]["message"] == "Access token has expired or is not yet valid."
    assert all("authorization" not in {h.lower() for h in r["headers"]}
               for r in graph_emulator.requests)


# ---------------------------------------------------------------------------- directory
def test_users_lookup_and_filter(graph_emulator: GraphEmulator,
                                 graph_session: requests.Session) -> None:
    users = orjson.loads((graph_emulator.data_dir / "graph" / "users.json").read_bytes())
    alias = next(u for u in users if u["userPrincipalName"].lower() != u["mail"].lower())
    g = graph_emulator.graph_url
    by_upn = graph_session.get(f"{g}/users/{alias['userPrincipalName'].upper()}",
                               params={"$select": "id,mail"}, timeout=10)
    assert by_upn.status_code == 200
    assert {k for k in by_upn.json() if not k.startswith("@")} == {"id", "mail"}
    # Directory lookups take an id or a userPrincipalName, not a mail address (as in Entra).
    assert graph_session.get(f"{g}/users/{alias['mail']}", timeout=10).status_code == 404
    found = graph_session.get(f"{g}/users", timeout=10,
                              params={"$filter": f"mail eq '{alias['mail'].upper()}'"}).json()
    assert [u["id"] for u in found["value"]] == [alias["id"]]
    missing = graph_session.get(f"{g}/users/nobody@contoso.com", timeout=10)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "Request_ResourceNotFound"


def test_transitive_members_of_nested_group(graph_emulator: GraphEmulator,
                                            graph_session: requests.Session) -> None:
    manifest = orjson.loads((graph_emulator.data_dir / "manifest.json").read_bytes())
    g = graph_emulator.graph_url
    groups = graph_session.get(f"{g}/groups", params={"$filter": "mail eq 'sales@contoso.com'"},
                               timeout=10).json()["value"]
    assert len(groups) == 1
    gid = groups[0]["id"]
    users, pages = follow(graph_session, f"{g}/groups/{gid}/transitiveMembers/microsoft.graph.user",
                          {"$select": "id,mail,userPrincipalName,displayName", "$top": "2"})
    ids = [u["id"] for u in users]
    assert len(ids) == len(set(ids))  # a user in both groups is listed once
    assert set(ids) == set(manifest["mailbox_ids"])
    assert len(pages) > 1 and all(u["@odata.type"] == "#microsoft.graph.user" for u in users)
    direct = graph_session.get(f"{g}/groups/{gid}/members", timeout=10).json()["value"]
    assert len(direct) < len(ids)
    everything, _ = follow(graph_session, f"{g}/groups/{gid}/transitiveMembers")
    assert any(m["@odata.type"] == "#microsoft.graph.group" for m in everything)
    assert "members" not in graph_session.get(f"{g}/groups/{gid}", timeout=10).json()
    assert graph_session.get(f"{g}/groups/nope/transitiveMembers", timeout=10).status_code == 404


# ---------------------------------------------------------------------------- mail
def test_mail_folders(graph_emulator: GraphEmulator, graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    base = f"{graph_emulator.graph_url}/users/{uid}/mailFolders"
    top, _ = follow(graph_session, base)
    names = {f["displayName"] for f in top}
    assert {"Inbox", "Sent Items", "Drafts"} <= names and "Sync Issues" not in names
    assert "Customers" not in names
    hidden, _ = follow(graph_session, base, {"includeHiddenFolders": "true"})
    assert "Sync Issues" in {f["displayName"] for f in hidden}
    assert all("_wellKnownName" not in f for f in hidden)
    inbox = graph_session.get(f"{base}/inbox", timeout=10).json()
    assert inbox["id"] == folder_id(graph_emulator.data_dir, uid, "inbox")
    expected = sum(m["parentFolderId"] == inbox["id"]
                   for m in ndjson(graph_emulator.data_dir, uid, "messages"))
    assert inbox["totalItemCount"] == expected
    children = graph_session.get(f"{base}/{inbox['id']}/childFolders", timeout=10).json()
    assert [c["displayName"] for c in children["value"]] == ["Customers"]
    nested = graph_session.get(f"{base}/{children['value'][0]['id']}/childFolders",
                               timeout=10).json()
    assert [c["displayName"] for c in nested["value"]] == ["Key accounts"]


def test_select_returns_only_selected(graph_emulator: GraphEmulator,
                                      graph_session: requests.Session) -> None:
    url = f"{graph_emulator.graph_url}/users/{first_mailbox(graph_emulator)}/messages"
    page = graph_session.get(url, params={"$select": ",".join(MESSAGE_FIELDS), "$top": "50"},
                             timeout=10).json()
    assert len(page["value"]) == 50
    allowed = set(MESSAGE_FIELDS) | {"@odata.etag"}
    for msg in page["value"]:
        assert set(msg) <= allowed and "id" in msg and msg["@odata.etag"].startswith('W/"')
        assert not HEAVY & set(msg)
    assert any("sentDateTime" in m and "toRecipients" in m for m in page["value"])
    only_id = graph_session.get(url, params={"$select": "receivedDateTime"}, timeout=10).json()
    assert all(set(m) == {"@odata.etag", "id", "receivedDateTime"} for m in only_id["value"])
    full = graph_session.get(url, timeout=10).json()
    assert len(full["value"]) == 10  # Graph's default page size
    assert all(set(m) >= HEAVY for m in full["value"])
    bad = graph_session.get(url, params={"$select": "id,notAProperty"}, timeout=10)
    assert bad.status_code == 400


def test_paging_yields_every_message_of_a_folder_once(
        graph_emulator: GraphEmulator, graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    inbox = folder_id(graph_emulator.data_dir, uid, "inbox")
    expected = {m["id"] for m in ndjson(graph_emulator.data_dir, uid, "messages")
                if m["parentFolderId"] == inbox}
    items, pages = follow(graph_session,
                          f"{graph_emulator.graph_url}/users/{uid}/mailFolders/{inbox}/messages",
                          {"$select": "id,receivedDateTime", "$top": "7"})
    ids = [m["id"] for m in items]
    assert len(ids) == len(set(ids)) == len(expected)
    assert set(ids) == expected
    assert "@odata.nextLink" not in pages[-1]
    assert all("$skiptoken=" in p["@odata.nextLink"] for p in pages[:-1])
    received = [m["receivedDateTime"] for m in items]
    assert received == sorted(received, reverse=True)  # newest first, as Graph lists


def test_top_is_capped_at_1000(graph_emulator: GraphEmulator,
                               graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    for i in range(1100):
        graph_emulator.add_message(uid, {"subject": f"bulk {i}",
                                         "receivedDateTime": "2026-01-05T10:00:00Z",
                                         "from": {"emailAddress": {"address": "a@b.com"}},
                                         "toRecipients": []})
    url = f"{graph_emulator.graph_url}/users/{uid}/messages"
    page = graph_session.get(url, params={"$top": "5000", "$select": "id"}, timeout=10).json()
    assert len(page["value"]) == 1000 and "@odata.nextLink" in page


def test_filter_received_date_time(graph_emulator: GraphEmulator,
                                   graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    start, end = "2025-09-01T00:00:00Z", "2025-12-01T00:00:00Z"
    expected = {m["id"] for m in ndjson(graph_emulator.data_dir, uid, "messages")
                if start <= m["receivedDateTime"] < end}
    assert expected
    items, _ = follow(graph_session, f"{graph_emulator.graph_url}/users/{uid}/messages", {
        "$filter": f"receivedDateTime ge {start} and receivedDateTime lt {end}",
        "$orderby": "receivedDateTime asc", "$select": "receivedDateTime", "$top": "100"})
    assert {m["id"] for m in items} == expected
    received = [m["receivedDateTime"] for m in items]
    assert received == sorted(received)


def test_message_delta_round_trip(graph_emulator: GraphEmulator,
                                  graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    inbox = folder_id(graph_emulator.data_dir, uid, "inbox")
    in_inbox = [m for m in ndjson(graph_emulator.data_dir, uid, "messages")
                if m["parentFolderId"] == inbox]
    url = f"{graph_emulator.graph_url}/users/{uid}/mailFolders/{inbox}/messages/delta"
    prefer = {"Prefer": "odata.maxpagesize=20"}
    first = graph_session.get(url, params={"$select": ",".join(MESSAGE_FIELDS)}, headers=prefer,
                              timeout=10)
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=20"
    assert len(first.json()["value"]) == 20
    items, pages = follow(graph_session, url, {"$select": ",".join(MESSAGE_FIELDS)}, prefer)
    assert sorted(m["id"] for m in items) == sorted(m["id"] for m in in_inbox)
    assert not HEAVY & set().union(*items)
    delta_link = pages[-1]["@odata.deltaLink"]
    assert "$deltatoken=" in delta_link and "@odata.nextLink" not in pages[-1]

    nothing = graph_session.get(delta_link, timeout=10).json()
    assert nothing["value"] == [] and "@odata.deltaLink" in nothing

    added = graph_emulator.add_message(uid, {
        "subject": "new", "receivedDateTime": "2026-03-14T10:00:00Z",
        "from": {"emailAddress": {"name": "X", "address": "x@example.com"}},
        "toRecipients": [], "parentFolderId": "inbox"})
    gone = in_inbox[0]["id"]
    graph_emulator.delete_message(uid, gone)
    changes, _ = follow(graph_session, nothing["@odata.deltaLink"])
    assert len(changes) == 2
    new = next(c for c in changes if "@removed" not in c)
    removed = next(c for c in changes if "@removed" in c)
    assert new["id"] == added["id"] and "subject" not in new  # the round keeps its $select
    assert removed == {"@odata.type": "#microsoft.graph.message", "id": gone,
                       "@removed": {"reason": "deleted"}}


def test_message_delta_filter_and_empty_pages(graph_emulator: GraphEmulator,
                                              graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    inbox = folder_id(graph_emulator.data_dir, uid, "inbox")
    since = "2025-10-01T00:00:00Z"
    expected = {m["id"] for m in ndjson(graph_emulator.data_dir, uid, "messages")
                if m["parentFolderId"] == inbox and m["receivedDateTime"] >= since}
    url = f"{graph_emulator.graph_url}/users/{uid}/mailFolders/inbox/messages/delta"
    graph_emulator.faults.empty_pages_every = 2
    items, pages = follow(graph_session, url, {"$filter": f"receivedDateTime ge {since}",
                                               "$select": "id"}, {"Prefer": "odata.maxpagesize=10"})
    assert {m["id"] for m in items} == expected and len(items) == len(expected)
    assert any(p["value"] == [] and "@odata.nextLink" in p for p in pages)
    bad = graph_session.get(url, params={"$filter": "subject eq 'x'"}, timeout=10)
    assert bad.status_code == 400


# ---------------------------------------------------------------------------- calendar
def test_calendar_view_range_types_and_utc(graph_emulator: GraphEmulator,
                                           graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    end_day = datetime.combine(SYNTHETIC_AS_OF, datetime.min.time(), UTC)
    start = end_day - timedelta(days=28)
    stored = ndjson(graph_emulator.data_dir, uid, "events")
    expected = {e["id"] for e in stored if e["type"] != "seriesMaster"
                and to_utc(e["start"]) < end_day and to_utc(e["end"]) > start}
    assert any(e["type"] == "seriesMaster" for e in stored)
    url = f"{graph_emulator.graph_url}/users/{uid}/calendarView"
    params = {"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "endDateTime": end_day.strftime("%Y-%m-%dT%H:%M:%SZ"),
              "$select": ",".join(EVENT_FIELDS), "$top": "25"}
    items, _ = follow(graph_session, url, params)
    assert {e["id"] for e in items} == expected and len(items) == len(expected)
    by_id = {e["id"]: e for e in stored}
    for event in items:
        assert event["type"] in {"singleInstance", "occurrence", "exception"}
        assert event["start"]["timeZone"] == "UTC" and "body" not in event
        utc = datetime.fromisoformat(event["start"]["dateTime"][:26]).replace(tzinfo=UTC)
        assert utc == to_utc(by_id[event["id"]]["start"])
    pacific = graph_session.get(url, params=params, timeout=10,
                                headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'})
    assert pacific.headers["Preference-Applied"] == 'outlook.timezone="Pacific Standard Time"'
    assert {e["start"]["timeZone"] for e in pacific.json()["value"]} == {"Pacific Standard Time"}
    missing = graph_session.get(url, timeout=10)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "ErrorInvalidParameter"


def test_calendar_view_delta(graph_emulator: GraphEmulator,
                             graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    url = f"{graph_emulator.graph_url}/users/{uid}/calendarView/delta"
    params = {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2026-03-16T00:00:00Z"}
    items, pages = follow(graph_session, url, params, {"Prefer": "odata.maxpagesize=30"})
    assert items and all(e["type"] != "seriesMaster" for e in items)
    delta_link = pages[-1]["@odata.deltaLink"]
    victim = items[0]["id"]
    graph_emulator.delete_event(uid, victim)
    added = graph_emulator.add_event(uid, {
        "subject": "late add", "isCancelled": False, "isAllDay": False,
        "start": {"dateTime": "2026-02-02T10:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-02-02T11:00:00.0000000", "timeZone": "UTC"},
        "attendees": [], "organizer": {"emailAddress": {"address": "a@contoso.com"}}})
    changes, _ = follow(graph_session, delta_link)
    assert {c["id"] for c in changes} == {victim, added["id"]}
    assert next(c for c in changes if c["id"] == victim)["@removed"] == {"reason": "deleted"}


# ---------------------------------------------------------------------------- faults
def test_throttling_has_retry_after(graph_emulator: GraphEmulator,
                                    graph_session: requests.Session) -> None:
    graph_emulator.faults.throttle_every = 2
    graph_emulator.faults.throttle_retry_after = 3
    url = f"{graph_emulator.graph_url}/users/{first_mailbox(graph_emulator)}/messages"
    statuses = [graph_session.get(url, timeout=10) for _ in range(4)]
    assert [r.status_code for r in statuses] == [200, 429, 200, 429]
    assert statuses[1].headers["Retry-After"] == "3"
    assert statuses[1].json()["error"]["code"] == "TooManyRequests"
    graph_emulator.faults.throttle_every = 0
    graph_emulator.faults.unavailable_every = 1
    unavailable = graph_session.get(url, timeout=10)
    assert unavailable.status_code == 503 and "Retry-After" in unavailable.headers
    graph_emulator.faults.unavailable_every = 0
    graph_emulator.faults.gateway_timeout_every = 1
    timeout = graph_session.get(url, timeout=10)
    assert timeout.status_code == 504 and "Retry-After" not in timeout.headers


def test_mailbox_concurrency_limit(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults.mailbox_concurrency_limit = 4
    graph_emulator.faults.latency_ms = 400
    token = token_request(graph_emulator).json()["access_token"]
    url = f"{graph_emulator.graph_url}/users/{first_mailbox(graph_emulator)}/messages"
    results: list[requests.Response] = []
    barrier = threading.Barrier(6)

    def call() -> None:
        barrier.wait()
        results.append(requests.get(url, headers={"Authorization": f"Bearer {token}"},
                                    timeout=10))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    throttled = [r for r in results if r.status_code == 429]
    assert len(throttled) >= 2 and sum(r.status_code == 200 for r in results) >= 1
    error = throttled[0].json()["error"]
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its MailboxConcurrency limit."


def test_forbidden_mailbox(graph_emulator: GraphEmulator,
                           graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    graph_emulator.faults.forbidden_mailboxes = {uid}
    g = graph_emulator.graph_url
    denied = graph_session.get(f"{g}/users/{uid}/mailFolders/inbox/messages", timeout=10)
    assert denied.status_code == 403
    error = denied.json()["error"]
    assert error["code"] == "ErrorAccessDenied"
    assert error["message"] == "Access is denied. Check credentials and try again."
    other = graph_emulator.mailbox_ids[1]
    assert graph_session.get(f"{g}/users/{other}/messages", timeout=10).status_code == 200
    assert graph_session.get(f"{g}/users/{uid}", timeout=10).status_code == 200  # directory


def test_unknown_route_and_request_log(graph_emulator: GraphEmulator,
                                       graph_session: requests.Session) -> None:
    response = graph_session.get(f"{graph_emulator.graph_url}/sites/root", timeout=10,
                                 headers={"client-request-id": "abc"})
    assert response.status_code == 400
    assert response.json()["error"]["innerError"]["client-request-id"] == "abc"
    logged = graph_emulator.requests.matching("/sites/root")
    assert logged[0]["status"] == 400 and logged[0]["headers"]["client-request-id"] == "abc"


def test_cli_prints_urls_and_stops_on_sigterm(synthetic_org: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "devtools.emulators.graph", "--data",
                             str(synthetic_org), "--lazy"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True)
    try:
        out = proc.stdout
        assert out is not None
        lines = dict(out.readline().strip().partition("=")[::2] for _ in range(5))
        api, login = lines["GRAPH_API_URL"], lines["GRAPH_LOGIN_URL"]
        ca = lines["REQUESTS_CA_BUNDLE"]
        assert api.startswith("http://127.0.0.1:") and api.endswith("/v1.0")
        assert login.startswith("https://127.0.0.1:") and Path(ca).is_file()
        manifest = orjson.loads((synthetic_org / "manifest.json").read_bytes())["emulator"]
        assert (lines["GRAPH_TENANT_ID"], lines["GRAPH_CLIENT_ID"]) == (
            manifest["tenant_id"], manifest["client_id"])
        token = requests.post(f"{login}/{manifest['tenant_id']}/oauth2/v2.0/token",
                              data={"grant_type": "client_credentials", "scope": SCOPE,
                                    "client_id": manifest["client_id"],
                                    "client_secret": manifest["client_secret"]}, timeout=10,
                              verify=ca)
        assert token.status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
    assert not Path(ca).exists()  # the certificate authority's files go with the emulator


@pytest.mark.parametrize("path", ["messages", "mailFolders/inbox/messages"])
def test_unknown_user_mail_routes(graph_emulator: GraphEmulator,
                                  graph_session: requests.Session, path: str) -> None:
    response = graph_session.get(f"{graph_emulator.graph_url}/users/ghost@contoso.com/{path}",
                                 timeout=10)
    assert response.status_code == 404


def test_moved_message_and_malformed_switch(graph_emulator: GraphEmulator,
                                            graph_session: requests.Session) -> None:
    uid = first_mailbox(graph_emulator)
    url = f"{graph_emulator.graph_url}/users/{uid}/mailFolders/inbox/messages/delta"
    _, pages = follow(graph_session, url, {"$select": "id"})
    stored = ndjson(graph_emulator.data_dir, uid, "messages")
    inbox = folder_id(graph_emulator.data_dir, uid, "inbox")
    moved = next(m["id"] for m in stored if m["parentFolderId"] == inbox)
    graph_emulator.update_message(uid, moved, {"parentFolderId": "archive"})
    changes, _ = follow(graph_session, pages[-1]["@odata.deltaLink"])
    assert changes == [{"@odata.type": "#microsoft.graph.message", "id": moved,
                        "@removed": {"reason": "deleted"}}]

    everything, _ = follow(graph_session, f"{graph_emulator.graph_url}/users/{uid}/messages",
                           {"$select": "from,toRecipients", "$top": "1000"})
    assert any("from" not in m or m.get("toRecipients") is None for m in everything)
    graph_emulator.faults.malformed_messages = False
    clean, _ = follow(graph_session, f"{graph_emulator.graph_url}/users/{uid}/messages",
                      {"$select": "from,toRecipients", "$top": "1000"})
    assert all("from" in m and m["toRecipients"] is not None for m in clean)
    assert len(clean) < len(everything)
