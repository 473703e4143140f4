"""What the cards show, read from the warehouse (read-only) in a few queries.

Sources, all outputs of `dbt build`: `office` (Year, Month and Week rows), `stale_accounts`,
`enrichment_status`, `leadspace` when that enrichment's table exists, and the account names
of the mart `office_accounts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb


class CardsError(Exception):
    """Bad input or state, said in one sentence (the CLI exits 2 with it)."""


# The `leadspace` output's columns (docs/metrics.md), in the order a card shows them.
LEADSPACE_COLUMNS = (
    "AccountId", "LeadspaceCompanyId", "CompanyName", "Website", "Industry", "SubIndustry",
    "SIC", "NAICS", "EmployeeCount", "EmployeeRange", "RevenueUsd", "RevenueRange", "Country",
    "State", "City", "MatchConfidence", "EnrichedAt",
)
# Columns that are null on every row where Leadspace found no match.
LEADSPACE_FIRMOGRAPHICS = LEADSPACE_COLUMNS[1:15]


@dataclass(frozen=True)
class Period:
    """One Month or Week row of `office` for an account."""

    start: date
    score: int
    emails_to: int
    emails_from: int
    meetings_to: int
    meetings_from: int


@dataclass
class Account:
    account_id: str
    name: str
    year: dict[str, Any]  # the Year row of `office`, by column name
    stale: bool = False
    months: list[Period] = field(default_factory=list)
    weeks: list[Period] = field(default_factory=list)
    leadspace: dict[str, Any] | None = None

    @property
    def score(self) -> int:
        return int(self.year["EngagementScore"])

    @property
    def emails(self) -> int:
        return int(self.year["NoOfEmails_ToAccount"]) + int(self.year["NoOfEmails_FromAccount"])

    @property
    def meetings(self) -> int:
        return int(self.year["NoOfMeetings_ToAccount"]) + int(
            self.year["NoOfMeetings_FromAccount"]
        )


@dataclass
class Site:
    accounts: list[Account]  # by engagement score, highest first, then by name
    window_start: date | None  # first day of the Year rows' window
    as_of: date | None  # its last day (dbt's as_of_date), from `office_accounts`
    enrichments: list[dict[str, Any]]
    leadspace_available: bool
    generated_at: datetime


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _relations(con: duckdb.DuckDBPyConnection, schema: str) -> dict[str, set[str]]:
    """Relation name -> its column names, in `schema` of the warehouse."""
    found: dict[str, set[str]] = {}
    for table, column in con.execute(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = ? and table_catalog = current_database()", [schema]
    ).fetchall():
        found.setdefault(table, set()).add(column)
    return found


def _schema(con: duckdb.DuckDBPyConnection, warehouse: Path, wanted: str) -> str:
    """The warehouse's schema named `wanted` (DuckDB's names ignore case), as it is spelt
    there; a sentence naming the schemas there are when it has none of that name."""
    schemas = [row[0] for row in con.execute(
        "select schema_name from information_schema.schemata "
        "where catalog_name = current_database() order by schema_name"
    ).fetchall()]
    for schema in schemas:
        if schema.lower() == wanted.lower():
            return schema
    raise CardsError(
        f"the warehouse {warehouse} has no schema {wanted!r} (it has {', '.join(schemas)}): "
        "give the schema dbt built the marts in with --schema or ACCOUNT_ENGAGEMENT_SCHEMA"
    )


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _connect(warehouse: Path) -> duckdb.DuckDBPyConnection:
    if not warehouse.is_file():
        raise CardsError(
            f"the warehouse {warehouse} does not exist: run `make demo` (or the loaders and "
            "`dbt build`) first, or set DUCKDB_PATH / --warehouse to its file"
        )
    try:
        return duckdb.connect(str(warehouse), read_only=True)
    except duckdb.IOException as error:
        if "lock" in str(error).lower():
            raise CardsError(
                f"the warehouse {warehouse} is open for writing in another process (a loader or "
                "`dbt build`?): build the cards when it has finished"
            ) from error
        raise CardsError(f"cannot open the warehouse {warehouse}: {error}") from error


def read_site(warehouse: Path, schema: str = "main") -> Site:
    """Everything the site shows, from the marts in `schema` of the warehouse file, opened
    read-only."""
    if not schema:
        raise CardsError("--schema is empty: name the schema dbt built the marts in "
                         "(main for a standalone build on DuckDB)")
    with _connect(warehouse) as con:
        schema = _schema(con, warehouse, schema)
        relations = _relations(con, schema)
        # the marts, qualified: the reader's default schema need not be theirs
        office, accounts_mart, stale_mart, leadspace_mart, status_mart = (
            f"{_quoted(schema)}.{name}" for name in (
                "office", "office_accounts", "stale_accounts", "leadspace", "enrichment_status")
        )
        missing = [name for name in ("office", "stale_accounts", "enrichment_status")
                   if name not in relations]
        if missing:
            where = "" if schema == "main" else f" in schema {schema}"
            raise CardsError(
                f"the warehouse {warehouse} has no {', '.join(missing)} table{where}: run "
                "`dbt build` first"
            )
        names: dict[str, str] = {}
        if {"AccountId", "AccountName"} <= relations.get("office_accounts", set()):
            names = dict(con.execute(
                f'select "AccountId", "AccountName" from {accounts_mart}'
            ).fetchall())
        stale = {row[0] for row in con.execute(f'select "AccountId" from {stale_mart}').fetchall()}

        accounts: dict[str, Account] = {}
        for row in _rows(con, f"""select * from {office} where "AggregationLevel" = 'Year'"""):
            account_id = row["AccountId"]
            accounts[account_id] = Account(
                account_id=account_id, name=names.get(account_id) or account_id, year=row,
                stale=account_id in stale,
            )
        for account_id, level, start, score, e_to, e_from, m_to, m_from in con.execute(f"""
            select "AccountId", "AggregationLevel", "AggregationStartDate", "EngagementScore",
                "NoOfEmails_ToAccount", "NoOfEmails_FromAccount",
                "NoOfMeetings_ToAccount", "NoOfMeetings_FromAccount"
            from {office}
            where "AggregationLevel" in ('Month', 'Week')
            order by "AccountId", "AggregationLevel", "AggregationStartDate"
        """).fetchall():
            account = accounts.get(account_id)
            if account is None:
                continue
            period = Period(start, int(score), int(e_to), int(e_from), int(m_to), int(m_from))
            (account.months if level == "Month" else account.weeks).append(period)

        leadspace_available = "leadspace" in relations
        if leadspace_available:
            columns = [c for c in LEADSPACE_COLUMNS if c in relations["leadspace"]]
            if "AccountId" in columns:
                order = '"EnrichedAt" desc nulls last' if "EnrichedAt" in columns else "1"
                select = ", ".join(f'"{c}"' for c in columns)
                for row in _rows(con, f"select {select} from {leadspace_mart} order by {order}"):
                    account = accounts.get(row["AccountId"])
                    if account is not None and account.leadspace is None:
                        account.leadspace = row

        enrichments = _rows(con, f'select * from {status_mart} order by "Enrichment"')
        window_start = con.execute(
            f"""select min("AggregationStartDate") from {office}
            where "AggregationLevel" = 'Year'"""
        ).fetchone()[0]
        as_of = None
        if "AsOfDate" in relations.get("office_accounts", set()):
            as_of = con.execute(f'select max("AsOfDate") from {accounts_mart}').fetchone()[0]

    ordered = sorted(accounts.values(), key=lambda a: (-a.score, a.name.lower(), a.account_id))
    return Site(
        accounts=ordered, window_start=window_start, as_of=as_of,
        enrichments=enrichments, leadspace_available=leadspace_available,
        generated_at=datetime.now().astimezone(),
    )
