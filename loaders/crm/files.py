"""`python -m loaders crm`: land a CRM snapshot (accounts and contacts) from CSV or Parquet.

Every column of the files is kept, as text, under its name lower-cased and trimmed. The new
snapshot replaces the old one in a single transaction: readers see the old accounts and
contacts or the new ones, never a mix, and a rejected file changes nothing.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from pathlib import Path

import duckdb

from loaders.errors import BadInput
from loaders.schema import CRM_SCHEMA
from loaders.warehouse import transaction, utc_now

ACCOUNT_COLUMNS = ("account_id", "name")
OPTIONAL_ACCOUNT_COLUMNS = ("website", "city", "country")
CONTACT_COLUMNS = ("contact_id", "account_id")


@dataclass
class CrmLoadResult:
    accounts: int
    contacts: int


TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
# column types of a Parquet file that do not land as readable text (a list type ends in "]")
UNFIT_TYPES = ("BLOB", "BIT", "STRUCT", "MAP", "UNION")
# a new snapshot with fewer than this share of the accounts landed before (and no accounts at
# all) is refused unless the user says it is right (--allow-shrink): a mistaken export would
# otherwise empty the CRM
MIN_SHARE_KEPT = 0.5
MIN_ACCOUNTS_CHECKED = 10


def _check_shrink(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    new = con.execute("select count(*) from crm_accounts_new").fetchone()[0]
    before = con.execute(f"select count(*) from {CRM_SCHEMA}.accounts").fetchone()[0]
    if new == 0:
        raise BadInput(
            f"{path}: holds no accounts (only its header); landing it would empty the CRM: "
            "export the accounts again, or pass --allow-shrink if the CRM is to be emptied."
        )
    if before >= MIN_ACCOUNTS_CHECKED and new < before * MIN_SHARE_KEPT:
        raise BadInput(
            f"{path}: holds {new:,} accounts, fewer than half of the {before:,} landed before; "
            "check the export, or pass --allow-shrink if that is right."
        )


def _reader(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return "read_csv(?, all_varchar = true, header = true)"
    if suffix in {".parquet", ".pq"}:
        return "read_parquet(?)"
    raise BadInput(f"{path}: use a .csv or .parquet file (got '{suffix or 'no extension'}').")


def _check_text(path: Path) -> None:
    """A CSV must be UTF-8 text: DuckDB's own error for another encoding is about sniffing."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    try:
        with path.open("rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                decoder.decode(chunk)
                offset += len(chunk)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise BadInput(
            f"{path}: is not UTF-8 text (byte {offset + exc.start:,} is not); re-export it as "
            "UTF-8 (in Excel: Save As, 'CSV UTF-8')."
        ) from None


def check_files(*paths: Path) -> None:
    """What can be told of the files before the warehouse is opened (or created): each is
    there, not empty, and of a kind this loader reads."""
    for path in paths:
        if not path.is_file():
            raise BadInput(f"{path}: no such file.")
        if path.stat().st_size == 0:
            raise BadInput(f"{path}: is empty (0 bytes); export it again.")
        _reader(path)


def _stage(con: duckdb.DuckDBPyConnection, path: Path, table: str) -> list[str]:
    """Read `path` into temp `table` with text columns named in lower case; return the names."""
    check_files(path)
    if path.suffix.lower() in TEXT_SUFFIXES:
        _check_text(path)
    try:
        described = con.execute(f"describe select * from {_reader(path)}", [str(path)]).fetchall()
    except duckdb.Error as exc:
        raise BadInput(f"{path}: cannot be read ({str(exc).splitlines()[0]}).") from None
    names = [row[0] for row in described]
    # every column lands as text: bytes or nested values would land garbled
    unfit = [f"{row[0]} ({row[1]})" for row in described
             if row[1].upper().startswith(UNFIT_TYPES) or row[1].endswith("]")]
    if unfit:
        raise BadInput(
            f"{path}: column{'s' if len(unfit) > 1 else ''} {', '.join(unfit)} cannot be read "
            "as text; export text, numbers or dates."
        )
    lowered = [name.strip().lower() for name in names]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    if duplicates:
        raise BadInput(f"{path}: column names repeat ignoring case: {', '.join(duplicates)}.")
    columns = ", ".join(
        f'trim(cast("{name}" as varchar)) as "{low}"'
        for name, low in zip(names, lowered, strict=True)
    )
    con.execute(
        f"create or replace temp table {table} as select {columns} from {_reader(path)}",
        [str(path)],
    )
    return lowered


def _require(path: Path, have: list[str], need: tuple[str, ...], what: str) -> None:
    missing = [c for c in need if c not in have]
    if missing:
        raise BadInput(
            f"{path}: {what} need the column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; the file has {', '.join(have) or 'no columns'}."
        )


def _check_keys(con: duckdb.DuckDBPyConnection, path: Path, table: str, key: str) -> None:
    blank, repeated, example = con.execute(
        f"""select
            count(*) filter (where "{key}" is null or "{key}" = ''),
            (select count(*) from (select "{key}" from {table} where "{key}" <> ''
                group by all having count(*) > 1)),
            (select min("{key}") from (select "{key}" from {table} where "{key}" <> ''
                group by all having count(*) > 1))
        from {table}"""
    ).fetchone()
    if blank:
        raise BadInput(f"{path}: {blank} row(s) have no {key}; every row needs one.")
    if repeated:
        raise BadInput(
            f"{path}: {repeated} {key} value(s) appear more than once (e.g. {example!r}); "
            "export one row per id."
        )


def load(
    con: duckdb.DuckDBPyConnection, accounts: Path, contacts: Path, email_column: str = "email",
    allow_shrink: bool = False,
) -> CrmLoadResult:
    email_column = email_column.strip().lower()
    account_cols = _stage(con, accounts, "crm_accounts_new")
    _require(accounts, account_cols, ACCOUNT_COLUMNS, "accounts")
    contact_cols = _stage(con, contacts, "crm_contacts_new")
    _require(contacts, contact_cols, (*CONTACT_COLUMNS, email_column), "contacts")
    _check_keys(con, accounts, "crm_accounts_new", "account_id")
    _check_keys(con, contacts, "crm_contacts_new", "contact_id")
    if not allow_shrink:
        _check_shrink(con, accounts)
    optional = ", ".join(
        f'cast(null as varchar) as "{c}"' for c in OPTIONAL_ACCOUNT_COLUMNS if c not in account_cols
    )
    now = utc_now()
    with transaction(con):
        con.execute(
            f"""create or replace table {CRM_SCHEMA}.accounts as
            select *{', ' + optional if optional else ''},
                cast(? as varchar) as _source_file, cast(? as timestamp) as _loaded_at
            from crm_accounts_new""",
            [str(accounts), now],
        )
        email_alias = "" if email_column == "email" or "email" in contact_cols else (
            f', "{email_column}" as email'
        )
        con.execute(
            f"""create or replace table {CRM_SCHEMA}.contacts as
            select *{email_alias},
                cast(? as varchar) as _source_file, cast(? as timestamp) as _loaded_at
            from crm_contacts_new""",
            [str(contacts), now],
        )
    n_accounts = con.execute(f"select count(*) from {CRM_SCHEMA}.accounts").fetchone()[0]
    n_contacts = con.execute(f"select count(*) from {CRM_SCHEMA}.contacts").fetchone()[0]
    return CrmLoadResult(n_accounts, n_contacts)
