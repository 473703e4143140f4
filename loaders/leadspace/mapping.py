"""Which CRM accounts column feeds which Leadspace input field (`--map FIELD=COLUMN`), and
the `company` object a request carries (see loaders/leadspace/enrich.py for what leaves the
machine)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import orjson

from loaders.errors import BadInput
from loaders.schema import CRM_SCHEMA

FIELDS = ("company_name", "website", "location")
OPTIONAL_FIELDS = ("website", "location")
_CRM_METADATA = ("_source_file", "_loaded_at")


@dataclass(frozen=True)
class Mapping:
    """Which CRM accounts column feeds which Leadspace input field."""

    columns: dict[str, str]  # field -> CRM column (lower case), company_name always present

    @property
    def fields(self) -> list[str]:
        return [f for f in FIELDS if f in self.columns]

    def describe(self) -> str:
        return ", ".join(f"{f} (column {self.columns[f]})" for f in self.fields)


def parse_mapping(values: list[str]) -> Mapping:
    """`--map FIELD=COLUMN` arguments: company_name required, each field once, nothing but
    company_name, website and location (so at most two fields besides the name)."""
    columns: dict[str, str] = {}
    for value in values:
        key, sep, column = value.partition("=")
        key, column = key.strip().lower(), column.strip().lower()
        if not sep or not key or not column:
            raise BadInput(f"--map {value!r}: write FIELD=COLUMN, e.g. --map company_name=name.")
        if key not in FIELDS:
            raise BadInput(
                f"--map {value!r}: Leadspace takes company_name, website and location only "
                f"(not {key!r})."
            )
        if key in columns:
            raise BadInput(f"--map: {key} is mapped twice ({columns[key]} and {column}).")
        columns[key] = column
    if "company_name" not in columns:
        raise BadInput(
            "--map company_name=COLUMN is required: Leadspace matches companies by name "
            "(add website and/or location to raise the match rate)."
        )
    return Mapping(columns)


def crm_accounts_table(con: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    """(schema, table) of the CRM accounts a run reads: the file CRM landed by `loaders crm`
    (raw_crm.accounts, every column of the file) when it holds rows; otherwise the model
    `crm_accounts` dbt built from the CRM the var `crm_source` names (Salesforce, HubSpot,
    Dataverse: `dbt run -s +crm_accounts` first), with the file's column names."""
    landed = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = ? and table_name = 'accounts'", [CRM_SCHEMA],
    ).fetchone()[0]
    if landed and con.execute(f"select count(*) from {CRM_SCHEMA}.accounts").fetchone()[0]:
        return CRM_SCHEMA, "accounts"
    built = con.execute(
        "select table_schema from information_schema.tables "
        "where table_name = 'crm_accounts' and table_schema not like 'raw\\_%' escape '\\' "
        "order by table_schema = 'main' desc limit 1",
    ).fetchone()
    if built is not None and con.execute(
            f'select count(*) from "{built[0]}".crm_accounts').fetchone()[0]:
        return built[0], "crm_accounts"
    raise BadInput(
        "no CRM accounts are landed: run python -m loaders crm --accounts FILE "
        "--contacts FILE first, or, with another crm_source, dbt run -s +crm_accounts."
    )


def crm_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    schema, table = crm_accounts_table(con)
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = ? order by ordinal_position",
        [schema, table],
    ).fetchall()
    return [r[0] for r in rows if r[0] not in _CRM_METADATA]


def check_columns(con: duckdb.DuckDBPyConnection, mapping: Mapping) -> None:
    have = crm_columns(con)
    missing = [c for c in dict.fromkeys(mapping.columns.values()) if c not in have]
    if missing:
        raise BadInput(
            f"--map: the CRM accounts have no column {', '.join(missing)}; the columns are: "
            f"{', '.join(have)}."
        )


def location_address(value: str, column: str = "") -> dict[str, str]:
    """The address fields a free-text location holds (documented in the module docstring)."""
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not parts:
        return {}
    if len(parts) == 1:
        name = column.lower()
        if "country" in name:
            return {"country": parts[0]}
        if any(word in name for word in ("state", "region", "province")):
            return {"state": parts[0]}
        return {"city": parts[0]}
    if len(parts) == 2:
        return {"city": parts[0], "country": parts[1]}
    if len(parts) == 3:
        return {"city": parts[0], "state": parts[1], "country": parts[2]}
    return {"street": ", ".join(parts[:-3]), "city": parts[-3], "state": parts[-2],
            "country": parts[-1]}


def company_input(mapping: Mapping, values: dict[str, str | None]) -> dict:
    """The `company` object of a request: only the mapped fields, only when not empty."""
    company: dict = {}
    name = (values.get("company_name") or "").strip()
    if name:
        company["name"] = name
    website = (values.get("website") or "").strip()
    if "website" in mapping.columns and website:
        company["website"] = website
    location = (values.get("location") or "").strip()
    if "location" in mapping.columns and location:
        address = location_address(location, mapping.columns["location"])
        if address:
            company["address"] = address
    return company


def request_hash(company: dict) -> str:
    return hashlib.sha256(orjson.dumps(company, option=orjson.OPT_SORT_KEYS)).hexdigest()
