"""Property test of EngagementScore (docs/metrics.md, "EngagementScore"), end to end.

Hypothesis builds small random organisations (2-3 org mailboxes, 3-4 accounts with 1-3
contacts each, a few emails and meetings inside the window, some meetings organized by a
third party), writes them straight into the raw tables of a temporary DuckDB file, runs the
models up to `office` with dbt's in-process runner and checks on `office`:

- bounds: EngagementScore is an integer in 0-100 on every row;
- zero: a row with no email and no meeting to or from the account in its period scores 0;
- dominance: an account at least as high as another on every figure of the Year row
  scores at least as high (so the account highest on every figure scores highest);
- monotonicity: one more email, one more meeting, one more account contact on an email, or
  a more recent last activity for one account never lowers that account's Year score;
- determinism: two builds over the same data give the identical `office` table.

The project is parsed once (partial parsing, one target dir) and the seeds are loaded once;
each build truncates the raw tables and reruns `+office` with `--full-refresh`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loaders.schema import CRM_SCHEMA, GRAPH_SCHEMA, RAW_DDL

dbt_cli = pytest.importorskip("dbt.cli.main")

ROOT = Path(__file__).resolve().parents[2]
AS_OF = date(2026, 6, 30)
WINDOW_DAYS = 365
ORG_DOMAIN = "org.test"
THIRD_PARTY_ORGANIZER = "host@partner-agency.test"  # of no account and not an org address

YEAR_FIGURES = (
    "NoOfEmails_ToAccount",
    "NoOfEmails_FromAccount",
    "NoOfMeetings_ToAccount",
    "NoOfMeetings_FromAccount",
    "NoOfContactsInvolved_Emails",
    "NoOfContactsInvolved_Meetings",
    "NoOfAccountContactsInvolved_Emails",
    "NoOfAccountContactsInvolved_Meetings",
)


# ---------------------------------------------------------------- the random organisation

@dataclass(frozen=True)
class Email:
    account: int
    from_account: bool  # else org -> account
    user: int
    contacts: tuple[int, ...]  # contact indexes within the account (sender first if from)
    days_ago: int


@dataclass(frozen=True)
class Meeting:
    account: int
    organized_by_account: bool
    user: int
    contacts: tuple[int, ...]
    days_ago: int
    minutes: int
    # organized by a third party (neither the org nor the account): a meeting with the
    # account, to it or from it neither
    third_party: bool = False


@dataclass(frozen=True)
class Org:
    users: int
    contacts_per_account: tuple[int, ...]
    emails: tuple[Email, ...] = field(default=())
    meetings: tuple[Meeting, ...] = field(default=())


def _contact_address(account: int, contact: int) -> str:
    return f"c{contact}@acc{account}.example"


def _user_address(user: int) -> str:
    return f"u{user}@{ORG_DOMAIN}"


@st.composite
def orgs(draw: st.DrawFn) -> Org:
    users = draw(st.integers(2, 3))
    contacts_per_account = tuple(
        draw(st.lists(st.integers(1, 3), min_size=3, max_size=4))
    )
    accounts = len(contacts_per_account)

    def contacts_of(account: int) -> st.SearchStrategy[tuple[int, ...]]:
        return st.lists(
            st.integers(0, contacts_per_account[account] - 1), min_size=1, max_size=2,
            unique=True,
        ).map(tuple)

    @st.composite
    def email(draw_email: st.DrawFn) -> Email:
        account = draw_email(st.integers(0, accounts - 1))
        return Email(
            account=account,
            from_account=draw_email(st.booleans()),
            user=draw_email(st.integers(0, users - 1)),
            contacts=draw_email(contacts_of(account)),
            days_ago=draw_email(st.integers(0, WINDOW_DAYS - 1)),
        )

    @st.composite
    def meeting(draw_meeting: st.DrawFn) -> Meeting:
        account = draw_meeting(st.integers(0, accounts - 1))
        return Meeting(
            account=account,
            organized_by_account=draw_meeting(st.booleans()),
            user=draw_meeting(st.integers(0, users - 1)),
            contacts=draw_meeting(contacts_of(account)),
            days_ago=draw_meeting(st.integers(0, WINDOW_DAYS - 1)),
            minutes=draw_meeting(st.sampled_from([15, 30, 45, 60, 90])),
            third_party=draw_meeting(st.sampled_from([False, False, True])),
        )

    return Org(
        users=users,
        contacts_per_account=contacts_per_account,
        emails=tuple(draw(st.lists(email(), max_size=8))),
        meetings=tuple(draw(st.lists(meeting(), max_size=5))),
    )


# ---------------------------------------------------------------- raw rows

def _address(address: str) -> dict[str, dict[str, str]]:
    return {"emailAddress": {"name": address.split("@")[0], "address": address}}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def raw_rows(org: Org) -> dict[str, list[dict]]:
    """The raw-layer rows of an organisation: one copy of each email and meeting, in the
    involved org user's mailbox / calendar."""
    loaded = "2026-06-30 23:00:00"
    users = [
        {"id": f"user-{u}", "mail": _user_address(u), "userPrincipalName": _user_address(u),
         "displayName": f"User {u}", "_selected_by": ["property-test"], "_run_id": "pt",
         "_loaded_at": loaded}
        for u in range(org.users)
    ]
    accounts = [
        {"account_id": f"A{a}", "name": f"Account {a}", "website": f"https://www.acc{a}.example",
         "city": None, "country": None, "_source_file": "pt", "_loaded_at": loaded}
        for a in range(len(org.contacts_per_account))
    ]
    contacts = [
        {"contact_id": f"A{a}-C{c}", "account_id": f"A{a}", "email": _contact_address(a, c),
         "_source_file": "pt", "_loaded_at": loaded}
        for a, count in enumerate(org.contacts_per_account)
        for c in range(count)
    ]
    messages = []
    for n, email in enumerate(org.emails):
        sent = datetime.combine(AS_OF - timedelta(days=email.days_ago), datetime.min.time())
        sent += timedelta(hours=9, minutes=n)
        account_side = [_contact_address(email.account, c) for c in email.contacts]
        if email.from_account:
            sender, recipients = account_side[0], [_user_address(email.user), *account_side[1:]]
        else:
            sender, recipients = _user_address(email.user), account_side
        messages.append({
            "id": f"m{n}", "internetMessageId": f"<m{n}@pt>", "conversationId": f"conv{n}",
            "parentFolderId": "inbox", "isDraft": False, "sentDateTime": _iso(sent),
            "receivedDateTime": _iso(sent), "lastModifiedDateTime": _iso(sent),
            "from": _address(sender), "sender": _address(sender),
            "toRecipients": [_address(r) for r in recipients], "ccRecipients": [],
            "bccRecipients": [],
            "_mailbox_id": f"user-{email.user}", "_folder_id": "inbox", "_removed": False,
            "_record_hash": f"h{n}", "_run_id": "pt", "_loaded_at": loaded,
        })
    events = []
    for n, meeting in enumerate(org.meetings):
        start = datetime.combine(AS_OF - timedelta(days=meeting.days_ago), datetime.min.time())
        start += timedelta(hours=10, minutes=n)
        end = start + timedelta(minutes=meeting.minutes)
        account_side = [_contact_address(meeting.account, c) for c in meeting.contacts]
        if meeting.third_party:
            organizer = THIRD_PARTY_ORGANIZER
            attendees = [_user_address(meeting.user), *account_side]
        elif meeting.organized_by_account:
            organizer, attendees = account_side[0], [_user_address(meeting.user)]
            attendees += account_side[1:]
        else:
            organizer, attendees = _user_address(meeting.user), account_side
        events.append({
            "id": f"e{n}", "iCalUId": f"ical{n}", "seriesMasterId": None,
            "type": "singleInstance", "isCancelled": False, "isAllDay": False,
            "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"),
                      "timeZone": "UTC"},
            "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"},
            "organizer": _address(organizer),
            "attendees": [
                {"type": "required", "status": {"response": "accepted", "time": None},
                 **_address(a)}
                for a in attendees
            ],
            "lastModifiedDateTime": _iso(start),
            "_mailbox_id": f"user-{meeting.user}", "_removed": False,
            "_record_hash": f"eh{n}", "_run_id": "pt", "_loaded_at": loaded,
        })
    return {
        f"{GRAPH_SCHEMA}.users": users,
        f"{CRM_SCHEMA}.accounts": accounts,
        f"{CRM_SCHEMA}.contacts": contacts,
        f"{GRAPH_SCHEMA}.messages": messages,
        f"{GRAPH_SCHEMA}.events": events,
    }


# ---------------------------------------------------------------- the warehouse and dbt

class Warehouse:
    """One temporary DuckDB file, the raw DDL and seeds in place, and dbt's in-process runner
    with one target dir (parsed once, partial parsing after)."""

    def __init__(self, tmp: Path) -> None:
        self.path = tmp / "warehouse.duckdb"
        self.tmp = tmp
        self.runner = dbt_cli.dbtRunner()
        with duckdb.connect(str(self.path)) as con:
            for statement in RAW_DDL:
                con.execute(statement)
        self._dbt("seed")

    def _dbt(self, *args: str) -> None:
        result = self.runner.invoke([
            *args, "--project-dir", str(ROOT), "--profiles-dir", str(ROOT),
            "--target-path", str(self.tmp / "target"), "--log-path", str(self.tmp / "logs"),
            "--vars", json.dumps({"as_of_date": AS_OF.isoformat()}), "--quiet",
        ])
        if not result.success:
            problem = result.exception or result.result
            raise AssertionError(f"dbt {' '.join(args)} failed: {problem}")

    def build_office(self, org: Org) -> list[tuple]:
        """Replaces the raw layer with `org`, runs +office, returns office sorted."""
        rows = raw_rows(org)
        with duckdb.connect(str(self.path)) as con:
            for table, records in rows.items():
                con.execute(f"delete from {table}")
                if not records:
                    continue
                source = self.tmp / "rows.json"
                source.write_text(json.dumps(records))
                described = con.execute(f"describe {table}").fetchall()
                types = {name: sql_type for name, sql_type, *_ in described}
                con.execute(
                    f"insert into {table} by name select * from read_json(?, columns = "
                    f"{_struct_literal(types)}, format = 'array')",
                    [str(source)],
                )
        # --full-refresh: the raw layer was replaced, not loaded on top (the incremental
        # models only read rows landed since their last build)
        self._dbt("run", "--select", "+office", "--full-refresh")
        with duckdb.connect(str(self.path)) as con:
            return con.execute(
                "select * from main.office order by all"
            ).fetchall()


def _struct_literal(types: dict[str, str]) -> str:
    items = ", ".join(
        "'" + name.replace("'", "''") + "': '" + sql_type.replace("'", "''") + "'"
        for name, sql_type in types.items()
    )
    return "{" + items + "}"


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    tmp = tmp_path_factory.mktemp("engagement_props")
    previous = os.environ.get("DUCKDB_PATH")
    os.environ["DUCKDB_PATH"] = str(tmp / "warehouse.duckdb")
    try:
        yield Warehouse(tmp)
    finally:
        if previous is None:
            os.environ.pop("DUCKDB_PATH", None)
        else:
            os.environ["DUCKDB_PATH"] = previous


# ---------------------------------------------------------------- reading office

OFFICE_COLUMNS = (
    "AccountId", "EngagementScore", "NoOfEmails_ToAccount", "NoOfEmails_FromAccount",
    "NoOfMeetings_ToAccount", "NoOfMeetings_FromAccount", "NoOfContactsInvolved_Emails",
    "NoOfContactsInvolved_Meetings", "NoOfAccountContactsInvolved_Emails",
    "NoOfAccountContactsInvolved_Meetings", "EngagementStartDate", "DaysSinceLastEmail",
    "DaysSinceLastMeeting", "AverageDuration_Of_Meetings",
    "AverageDuration_Of_AccountEmailReplies", "AggregationStartDate", "AggregationLevel",
)


def _records(office: list[tuple]) -> list[dict]:
    return [dict(zip(OFFICE_COLUMNS, row, strict=True)) for row in office]


def _year(office: list[tuple]) -> dict[str, dict]:
    return {r["AccountId"]: r for r in _records(office) if r["AggregationLevel"] == "Year"}


def _days_since_activity(row: dict) -> float:
    days = [d for d in (row["DaysSinceLastEmail"], row["DaysSinceLastMeeting"]) if d is not None]
    return min(days) if days else float("inf")


def _dominates(a: dict, b: dict) -> bool:
    """a is at least as high as b on every figure the score reads (Year row)."""
    return (
        all(a[f] >= b[f] for f in YEAR_FIGURES)
        and _days_since_activity(a) <= _days_since_activity(b)
    )


def check_office(office: list[tuple]) -> None:
    assert office, "office is empty"
    assert [len(row) for row in office[:1]] == [len(OFFICE_COLUMNS)]
    for row in _records(office):
        score = row["EngagementScore"]
        assert isinstance(score, int) and 0 <= score <= 100, row
        active = (
            row["NoOfEmails_ToAccount"] + row["NoOfEmails_FromAccount"]
            + row["NoOfMeetings_ToAccount"] + row["NoOfMeetings_FromAccount"]
        )
        if active == 0:
            assert score == 0, row
    year = _year(office)
    for a in year.values():
        for b in year.values():
            if _dominates(a, b):
                assert a["EngagementScore"] >= b["EngagementScore"], (a, b)


# ---------------------------------------------------------------- the changes

CHANGES = ("email", "meeting", "contact", "recent")


def apply_change(org: Org, change: str, account: int, user: int, from_account: bool) -> Org:
    """One more activity figure for `account`, every other account's data unchanged."""
    if change == "email":
        return replace(org, emails=(*org.emails, Email(account, from_account, user, (0,), 3)))
    if change == "meeting":
        return replace(
            org, meetings=(*org.meetings, Meeting(account, from_account, user, (0,), 5, 30))
        )
    if change == "contact":
        # one more contact of the account on one of its emails (a new contact if needed)
        contacts = list(org.contacts_per_account)
        emails = list(org.emails)
        mine = [n for n, e in enumerate(emails) if e.account == account]
        if not mine:
            return apply_change(org, "email", account, user, from_account)
        n = mine[-1]
        unused = [c for c in range(contacts[account]) if c not in emails[n].contacts]
        if unused:
            extra = unused[0]
        else:
            extra = contacts[account]
            contacts[account] += 1
        emails[n] = replace(emails[n], contacts=(*emails[n].contacts, extra))
        return replace(org, contacts_per_account=tuple(contacts), emails=tuple(emails))
    if change == "recent":
        # the account's latest activity moves to as_of_date
        emails = list(org.emails)
        meetings = list(org.meetings)
        dated = [(e.days_ago, "e", n) for n, e in enumerate(emails) if e.account == account]
        dated += [(m.days_ago, "m", n) for n, m in enumerate(meetings) if m.account == account]
        if not dated:
            return apply_change(org, "email", account, user, from_account)
        _, kind, n = min(dated)
        if kind == "e":
            emails[n] = replace(emails[n], days_ago=0)
        else:
            meetings[n] = replace(meetings[n], days_ago=0)
        return replace(org, emails=tuple(emails), meetings=tuple(meetings))
    raise ValueError(change)


# ---------------------------------------------------------------- the properties

@settings(
    max_examples=int(os.environ.get("ENGAGEMENT_PROPERTY_EXAMPLES", "12")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    org=orgs(),
    change=st.sampled_from(CHANGES),
    account_pick=st.integers(0, 10),
    user_pick=st.integers(0, 10),
    from_account=st.booleans(),
)
def test_score_bounds_zero_dominance_and_monotonicity(
    warehouse: Warehouse, org: Org, change: str, account_pick: int, user_pick: int,
    from_account: bool,
) -> None:
    before = warehouse.build_office(org)
    check_office(before)

    account = account_pick % len(org.contacts_per_account)
    changed = apply_change(org, change, account, user_pick % org.users, from_account)
    after = warehouse.build_office(changed)
    check_office(after)

    old, new = _year(before)[f"A{account}"], _year(after)[f"A{account}"]
    assert new["EngagementScore"] >= old["EngagementScore"], (
        f"{change} for A{account} lowered its Year score", org, old, new
    )


@settings(
    max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(org=orgs())
def test_score_is_deterministic(warehouse: Warehouse, org: Org) -> None:
    assert warehouse.build_office(org) == warehouse.build_office(org)
