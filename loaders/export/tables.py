"""The raw tables an export copies, shared by both targets: every base table of the
warehouse's `raw_*` schemas, found in DuckDB's information_schema, with its columns and row
count; each column with its DuckDB type, its Postgres type and the DuckDB expression rendering
a value as Postgres input text (loaders/export/postgres.py, 'Types'); and what an export
reports (`ExportResult`).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from loaders.errors import BadInput

RAW_PREFIX = "raw_"

# DuckDB type -> Postgres type (as Postgres' format_type() spells it, so that an existing
# table's columns can be compared with the wanted ones).
_SIMPLE_TYPES: dict[str, str] = {
    "VARCHAR": "text",
    "BOOLEAN": "boolean",
    "TINYINT": "smallint",
    "SMALLINT": "smallint",
    "INTEGER": "integer",
    "BIGINT": "bigint",
    "HUGEINT": "numeric",
    "UTINYINT": "smallint",
    "USMALLINT": "integer",
    "UINTEGER": "bigint",
    "UBIGINT": "numeric",
    "UHUGEINT": "numeric",
    "BIGNUM": "numeric",
    "VARINT": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "DATE": "date",
    "TIME": "time without time zone",
    "TIME WITH TIME ZONE": "time with time zone",
    "TIMESTAMP": "timestamp without time zone",
    "TIMESTAMP_S": "timestamp without time zone",
    "TIMESTAMP_MS": "timestamp without time zone",
    "TIMESTAMP_NS": "timestamp without time zone",
    "TIMESTAMP WITH TIME ZONE": "timestamp with time zone",
    "INTERVAL": "interval",
    "UUID": "uuid",
    "BLOB": "bytea",
}
_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\s*\(|^JSON$|\]$", re.IGNORECASE)
_DECIMAL = re.compile(r"^(?:DECIMAL|NUMERIC)\s*\((\d+)\s*,\s*(\d+)\)$", re.IGNORECASE)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    name: str
    duckdb_type: str
    pg_type: str
    select: str  # the DuckDB expression rendering the value as Postgres input text


@dataclass(frozen=True)
class RawTable:
    schema: str
    name: str
    columns: tuple[Column, ...]
    rows: int

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"

    @property
    def pg_name(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass
class ExportResult:
    tables: list[tuple[str, int]] = field(default_factory=list)  # (schema.table, rows)
    recreated: list[str] = field(default_factory=list)  # tables whose columns changed
    # how each table was copied: "whole" (an untracked table), "changes since the last
    # export", or "whole: <why>" (a tracked table; changes.py)
    modes: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rows(self) -> int:
        return sum(rows for _, rows in self.tables)


def column_for(name: str, duckdb_type: str) -> Column:
    """How one DuckDB column is typed in Postgres and rendered in the CSV stream."""
    ident = quote_ident(name)
    upper = duckdb_type.strip().upper()
    if _NESTED.search(upper):
        return Column(name, duckdb_type, "jsonb", f"cast(to_json({ident}) as varchar)")
    if decimal := _DECIMAL.match(upper):
        precision, scale = decimal.groups()
        return Column(name, duckdb_type, f"numeric({precision},{scale})",
                      f"cast({ident} as varchar)")
    pg_type = _SIMPLE_TYPES.get(upper, "text")  # ENUM, BIT and the like: their text
    if pg_type == "bytea":
        return Column(name, duckdb_type, pg_type, f"'\\x' || hex({ident})")
    return Column(name, duckdb_type, pg_type, f"cast({ident} as varchar)")


def raw_tables(duck: duckdb.DuckDBPyConnection, path: Path) -> list[RawTable]:
    """The raw tables an export copies (DuckDB given DUCKDB_MEMORY_LIMIT, default 4GB, to
    read them); a sentence when the warehouse at `path` has none."""
    duck.execute("set memory_limit = ?", [os.environ.get("DUCKDB_MEMORY_LIMIT") or "4GB"])
    tables = discover(duck)
    if not tables:
        raise BadInput(
            f"the warehouse {path} has no raw tables (no schema named {RAW_PREFIX}*): land "
            "data first (python -m loaders crm / graph)."
        )
    return tables


def discover(con: duckdb.DuckDBPyConnection) -> list[RawTable]:
    """Every base table of the warehouse's `raw_*` schemas, with its columns and row count."""
    names = con.execute(
        """select table_schema, table_name from information_schema.tables
           where table_catalog = current_database() and starts_with(table_schema, ?)
             and table_type = 'BASE TABLE'
           order by table_schema, table_name""",
        [RAW_PREFIX],
    ).fetchall()
    tables = []
    for schema, name in names:
        columns = tuple(
            column_for(column, data_type)
            for column, data_type in con.execute(
                """select column_name, data_type from information_schema.columns
                   where table_catalog = current_database() and table_schema = ?
                     and table_name = ?
                   order by ordinal_position""",
                [schema, name],
            ).fetchall()
        )
        [(rows,)] = con.execute(
            f"select count(*) from {quote_ident(schema)}.{quote_ident(name)}"
        ).fetchall()
        tables.append(RawTable(schema, name, columns, rows))
    return tables
