"""The accounts a Leadspace run sends: every CRM account, or the members of a segment dbt
built, each with the `company` object its mapped values give."""

from __future__ import annotations

import re
from dataclasses import dataclass

import duckdb

from loaders.errors import BadInput
from loaders.leadspace.mapping import (
    Mapping,
    company_input,
    crm_accounts_table,
    request_hash,
)

_SEGMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Account:
    account_id: str
    company: dict
    hash: str
    fields: list[str]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def dataset_accounts(
    con: duckdb.DuckDBPyConnection, mapping: Mapping, segment: str | None
) -> tuple[str, list[Account], int]:
    """(dataset description, accounts with a company name, accounts without one)."""
    schema, table = crm_accounts_table(con)
    select = ", ".join(
        f"cast({_quote(mapping.columns[f])} as varchar) as {f}" for f in mapping.fields
    )
    where = ""
    dataset = "all accounts"
    if segment:
        where = f"where account_id in ({_segment_ids(con, segment)})"
        dataset = f"segment {segment}"
    rows = con.execute(
        f"select account_id, {select} from {_quote(schema)}.{_quote(table)} {where} "
        "order by account_id"
    ).fetchall()
    accounts, no_name = [], 0
    for row in rows:
        values = dict(zip(mapping.fields, row[1:], strict=True))
        company = company_input(mapping, values)
        if "name" not in company:
            no_name += 1
            continue
        sent = [f for f in mapping.fields if _sent(f, company)]
        accounts.append(Account(str(row[0]), company, request_hash(company), sent))
    return dataset, accounts, no_name


def _sent(field_name: str, company: dict) -> bool:
    key = {"company_name": "name", "website": "website", "location": "address"}[field_name]
    return key in company


def _segment_ids(con: duckdb.DuckDBPyConnection, segment: str) -> str:
    if not _SEGMENT_NAME.match(segment):
        raise BadInput(f"--segment {segment!r}: a segment is named like stale_accounts.")
    found = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where lower(table_name) = lower(?) and table_schema not like 'raw\\_%' escape '\\' "
        "order by table_schema = 'main' desc limit 1",
        [segment],
    ).fetchone()
    if found is None:
        raise BadInput(
            f"the segment {segment} has not been built in this warehouse: run dbt build first "
            "(it builds the segments from the landed data), then run this again."
        )
    schema, table = found
    columns = {
        r[0] for r in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = ? and table_name = ?", [schema, table],
        ).fetchall()
    }
    if "AccountId" not in columns:
        raise BadInput(f"{segment} is not a segment: it has no AccountId column.")
    return f'select "AccountId" from {_quote(schema)}.{_quote(table)}'
