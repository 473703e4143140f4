"""The synthetic organisation: determinism and the shapes the metrics must cope with."""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import SYNTHETIC_AS_OF

from devtools import synthetic

SMALL = {"seed": 3, "mailboxes": 3, "accounts": 20, "messages_per_mailbox": 60,
         "as_of": date(2026, 3, 15)}


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def mailbox_files(org: Path, name: str) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for box in sorted((org / "graph" / "mailboxes").iterdir()):
        lines = (box / f"{name}.ndjson").read_bytes().splitlines()
        out[box.name] = [orjson.loads(line) for line in lines if line]
    return out


def folders_by_name(org: Path) -> dict[str, dict[str, str]]:
    """user id -> well-known (or display) name -> folder id"""
    out = {}
    for box in (org / "graph" / "mailboxes").iterdir():
        folders = orjson.loads((box / "folders.json").read_bytes())
        out[box.name] = {(f["_wellKnownName"] or f["displayName"]): f["id"] for f in folders}
    return out


@pytest.fixture(scope="module")
def messages(synthetic_org: Path) -> dict[str, list[dict[str, Any]]]:
    return mailbox_files(synthetic_org, "messages")


@pytest.fixture(scope="module")
def events(synthetic_org: Path) -> dict[str, list[dict[str, Any]]]:
    return mailbox_files(synthetic_org, "events")


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    synthetic.generate(tmp_path / "a", **SMALL)
    synthetic.generate(tmp_path / "b", **SMALL)
    synthetic.generate(tmp_path / "c", **{**SMALL, "seed": 4})
    first, second = digest(tmp_path / "a"), digest(tmp_path / "b")
    assert first == second and len(first) > 10
    assert digest(tmp_path / "c") != first


def test_cli_summary_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = synthetic.main(["--out", str(tmp_path), "--mailboxes", "2", "--accounts", "12",
                           "--messages-per-mailbox", "20", "--as-of", "2026-01-31"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0] and "2 mailboxes" in lines[0]
    manifest = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert manifest["as_of"] == "2026-01-31" and manifest["window"]["start"] == "2025-02-01"
    assert manifest["emulator"]["client_id"] == "demo-client-id"


def test_manifest_counts(synthetic_org: Path, messages: dict[str, list]) -> None:
    manifest = orjson.loads((synthetic_org / "manifest.json").read_bytes())
    counts = manifest["counts"]
    assert counts["mailboxes"] == 6 == len(messages)
    assert counts["messages"] == sum(len(v) for v in messages.values()) >= 6 * 150
    assert counts["accounts"] == len(read_csv(synthetic_org / "crm" / "accounts.csv"))
    assert manifest["as_of"] == SYNTHETIC_AS_OF.isoformat()


def test_users_and_nested_groups(synthetic_org: Path) -> None:
    users = orjson.loads((synthetic_org / "graph" / "users.json").read_bytes())
    groups = {g["mail"]: g for g in
              orjson.loads((synthetic_org / "graph" / "groups.json").read_bytes())}
    assert len(users) > 6
    assert any(u["userPrincipalName"] != u["mail"] for u in users)
    sales, emea = groups["sales@contoso.com"], groups["sales-emea@contoso.com"]
    assert emea["id"] in sales["members"]
    assert set(sales["members"]) & set(emea["members"])  # someone in both: dedup matters
    by_id = {g["id"]: g for g in groups.values()}

    def expand(group: dict[str, Any]) -> set[str]:
        out: set[str] = set()
        for member in group["members"]:
            out |= expand(by_id[member]) if member in by_id else {member}
        return out

    mailboxes = {p.name for p in (synthetic_org / "graph" / "mailboxes").iterdir()}
    assert expand(sales) == mailboxes


def test_crm_shapes(synthetic_org: Path, messages: dict[str, list]) -> None:
    accounts = read_csv(synthetic_org / "crm" / "accounts.csv")
    contacts = read_csv(synthetic_org / "crm" / "contacts.csv")
    assert set(accounts[0]) == {"account_id", "name", "website", "city", "country", "industry"}
    websites = [a["website"] for a in accounts]
    assert "" in websites and any(w.startswith("http://") for w in websites)
    assert any(w.startswith("https://www.") for w in websites)
    assert any("/" not in w and w for w in websites)
    manifest = orjson.loads((synthetic_org / "manifest.json").read_bytes())
    for domain in manifest["facts"]["shared_domains"]:
        assert sum(domain in w.lower() for w in websites) >= 2
    emails = [c["email"] for c in contacts]
    assert any(e != e.strip() for e in emails)
    assert any(e.strip() != e.strip().lower() for e in emails)
    assert any(e.strip().endswith(("gmail.com", "outlook.com", "yahoo.com", "hotmail.com"))
               for e in emails)
    # Accounts without activity: none of their contacts appears in any message.
    inactive = set(manifest["facts"]["inactive_account_ids"])
    quiet = {c["email"].strip().lower() for c in contacts if c["account_id"] in inactive}
    seen = {r["emailAddress"]["address"].lower() for box in messages.values() for m in box
            for r in (m.get("toRecipients") or []) + m["ccRecipients"] + [m.get("from")] if r}
    assert inactive and not quiet & seen


def test_message_shapes(synthetic_org: Path, messages: dict[str, list]) -> None:
    folders = folders_by_name(synthetic_org)
    copies = Counter(m["internetMessageId"] for box in messages.values() for m in box)
    assert max(copies.values()) >= 2
    drafts = [(uid, m) for uid, box in messages.items() for m in box if m["isDraft"]]
    assert drafts and all(m["parentFolderId"] == folders[uid]["drafts"] for uid, m in drafts)
    for uid, box in messages.items():
        for m in box:
            assert m["receivedDateTime"].endswith("Z") and len(m["sentDateTime"]) == 20
            assert {"body", "subject", "bodyPreview", "uniqueBody"} <= set(m)
            if m["bccRecipients"]:
                assert m["parentFolderId"] in (folders[uid]["sentitems"],
                                               folders[uid]["deleteditems"])
    flat = [m for box in messages.values() for m in box]
    assert any("from" not in m for m in flat)
    assert any(m["toRecipients"] is None for m in flat)
    threads = defaultdict(set)
    for m in flat:
        threads[m["conversationId"]].add(m["internetMessageId"])
    assert any(len(v) >= 2 for v in threads.values())
    assert any(m["parentFolderId"] == folders[uid]["Customers"]
               for uid, box in messages.items() for m in box)
    window_start = "2025-03-16T00:00:00Z"
    older = [m for m in flat if m["receivedDateTime"] < window_start]
    assert older and len(older) < len(flat) * 0.05
    assert all(m["receivedDateTime"] <= "2026-03-16T00:02:00Z" for m in flat)
    senders = {m["from"]["emailAddress"]["address"] for m in flat if "from" in m}
    assert "news@some-vendor.com" in senders or any("news" in s for s in senders)
    assert any(a != a.lower() and not a.endswith("contoso.com") for a in senders)


def test_event_shapes(events: dict[str, list]) -> None:
    flat = [e for box in events.values() for e in box]
    types = Counter(e["type"] for e in flat)
    assert types["seriesMaster"] and types["occurrence"] and types["singleInstance"]
    assert types["exception"]
    for box in events.values():
        masters = {e["id"] for e in box if e["type"] == "seriesMaster"}
        assert all(e["seriesMasterId"] in masters for e in box
                   if e["type"] in ("occurrence", "exception"))
    occurrences = [e for e in flat if e["type"] == "occurrence"]
    per_series: dict[str, set[str]] = defaultdict(set)
    counts: Counter[str] = Counter()
    for e in occurrences:
        per_series[e["seriesMasterId"]].add(e["iCalUId"])
        counts[e["seriesMasterId"]] += 1
    assert any(len(v) == 1 and counts[k] > 5 for k, v in per_series.items())  # shared iCalUId
    assert any(len(v) > 5 for v in per_series.values())  # distinct per occurrence
    ical_calendars = Counter(e["iCalUId"] for e in flat if e["type"] == "singleInstance")
    assert max(ical_calendars.values()) >= 2  # one meeting, several calendars
    assert any(e["isCancelled"] for e in flat) and any(e["isAllDay"] for e in flat)
    assert any(e["attendees"] == [] for e in flat)
    assert any(a["status"]["response"] == "declined" for e in flat for a in e["attendees"])
    assert any(a["type"] == "resource" for e in flat for a in e["attendees"])
    assert any(e["start"]["dateTime"] > "2026-03-16" for e in flat)  # after as_of
    assert len({e["start"]["timeZone"] for e in flat}) >= 3
    assert any(not e["organizer"]["emailAddress"]["address"].lower().endswith("contoso.com")
               for e in flat)
    assert all("body" in e and e["start"]["dateTime"].count(".") == 1 for e in flat)
    weeks = 56
    per_user_week = len([e for e in flat if e["type"] != "seriesMaster"]) / len(events) / weeks
    assert 4 <= per_user_week <= 12
