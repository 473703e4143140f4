"""`python -m loaders leadspace`: consented firmographics from Leadspace for CRM accounts.

What leaves the machine
- Only the mapped fields, from the CRM accounts landed by `python -m loaders crm`:
  `company_name` (required) and at most two more, `website` and `location`, each read from
  the CRM column the user names (`--map company_name=name --map website=website
  --map location=city`), plus `external_id` = the CRM account id (to match the answer back).
  An empty value is left out of the record; an account without a company name is not sent.
- The location column is split on commas into the address fields Leadspace takes (see
  `location_address`): "Paris, France" is city + country, "Austin, TX, United States" is
  city + state + country, a longer value also carries the street; a single value is the
  city, unless the column is named like a country (`country`, `country_code`) or a state
  (`state`, `region`, `province`).
- Nothing is sent without `--consent`; each consent is recorded in `raw_leadspace.consents`
  (when, which fields from which columns, which dataset, where to).

Which accounts
- Every account of the CRM snapshot, or (`--segment NAME`) the members of a segment output
  that dbt built (e.g. `stale_accounts`, read by its `AccountId` column).
- An account whose mapped values are the same as when Leadspace last answered it is not
  sent again until that answer is older than `--refresh-days` (default 30): it saves credits.
  Accounts whose last answer was a failure are sent again.

How
- Batches of up to 500 records go to the bulk endpoint; the job's polling URI is stored in
  `raw_leadspace.bulk_jobs` before it is polled, so a run interrupted while Leadspace works
  collects the results at its next start instead of paying for them twice. A last batch
  smaller than `SINGLE_BELOW` records goes through single calls (a bulk job's round trips
  are not worth it for a handful of records).
- Each answer is landed as returned (`raw_leadspace.answers`), with its request's hash and
  fields; a bulk's answers land in one transaction with the removal of its job row, so a
  re-run never duplicates them.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

import duckdb
import orjson
from rich.progress import Progress

from loaders.errors import BadInput
from loaders.leadspace_client import BULK_LIMIT, LeadspaceClient, ResultsNotFound
from loaders.progress import progress_bar
from loaders.schema import (
    CRM_SCHEMA,
    LEADSPACE_COMPANY_FIELDS,
    LEADSPACE_SCHEMA,
    LOADER_SCHEMA,
)
from loaders.warehouse import new_run_id, record_runs, run_row, transaction, utc_now

log = logging.getLogger(__name__)

FIELDS = ("company_name", "website", "location")
OPTIONAL_FIELDS = ("website", "location")
DEFAULT_REFRESH_DAYS = 30
SINGLE_BELOW = 10
ENRICHED = frozenset({"company enriched", "person & company enriched"})
_SEGMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CRM_METADATA = ("_source_file", "_loaded_at")


# ---------------------------------------------------------------------------- mapping
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


def crm_columns(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute(
        "select column_name from information_schema.columns "
        "where table_schema = ? and table_name = 'accounts' order by ordinal_position",
        [CRM_SCHEMA],
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


# ---------------------------------------------------------------------------- dataset
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
    landed = con.execute(f"select count(*) from {CRM_SCHEMA}.accounts").fetchone()[0]
    if not landed:
        raise BadInput(
            "no CRM accounts are landed: run python -m loaders crm --accounts FILE "
            "--contacts FILE first."
        )
    select = ", ".join(
        f"cast({_quote(mapping.columns[f])} as varchar) as {f}" for f in mapping.fields
    )
    where = ""
    dataset = "all accounts"
    if segment:
        where = f"where account_id in ({_segment_ids(con, segment)})"
        dataset = f"segment {segment}"
    rows = con.execute(
        f"select account_id, {select} from {CRM_SCHEMA}.accounts {where} order by account_id"
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


# ---------------------------------------------------------------------------- the load
@dataclass
class LeadspaceLoadResult:
    run_id: str
    dataset: str
    accounts: int
    sent: int = 0
    enriched: int = 0
    not_matched: int = 0
    failed: int = 0
    skipped_unchanged: int = 0
    no_name: int = 0
    resumed: int = 0
    requests: int = 0
    seconds: float = 0.0

    def count(self, answers: list[dict]) -> None:
        for answer in answers:
            if answer["_error"] is not None:
                self.failed += 1
            elif (answer["enrichment_status"] or "").lower() in ENRICHED:
                self.enriched += 1
            else:
                self.not_matched += 1


@dataclass
class _Pending:
    request_id: str
    results_url: str
    accounts: list[Account] = field(default_factory=list)


def load(
    con: duckdb.DuckDBPyConnection,
    client: LeadspaceClient,
    mapping_args: list[str],
    consent: bool,
    segment: str | None = None,
    refresh_days: int = DEFAULT_REFRESH_DAYS,
    show_progress: bool = True,
    batch_size: int = BULK_LIMIT,
) -> LeadspaceLoadResult:
    if refresh_days < 0:
        raise BadInput("--refresh-days must be 0 or more.")
    if not 1 <= batch_size <= BULK_LIMIT:
        raise BadInput(f"--batch-size must be between 1 and {BULK_LIMIT}.")
    mapping = parse_mapping(mapping_args)
    check_columns(con, mapping)
    dataset, accounts, no_name = dataset_accounts(con, mapping, segment)
    if not consent:
        raise BadInput(
            f"nothing was sent: sending account data to Leadspace needs your consent. Run again "
            f"with --consent to agree that {mapping.describe()} and the account id of "
            f"{len(accounts):,} accounts ({dataset}) are sent to {client.base_url}."
        )
    started = utc_now()
    run_id = new_run_id()
    result = LeadspaceLoadResult(run_id, dataset, len(accounts) + no_name, no_name=no_name)
    _record_consent(con, run_id, mapping, dataset, len(accounts) + no_name, client.base_url)

    with progress_bar(show_progress) as progress:
        resumed = _resume(con, client, run_id, result, progress)
        to_send, result.skipped_unchanged = _changed(con, accounts, refresh_days, resumed)
        task = progress.add_task("accounts answered", total=len(to_send))
        for batch in _batches(to_send, batch_size):
            if len(batch) < SINGLE_BELOW:
                for account in batch:
                    answer = client.enrich_single({"company": account.company,
                                                   "external_id": account.account_id})
                    rows = _land(con, f"single:{run_id}:{account.account_id}", [account],
                                 [answer], run_id)
                    result.count(rows)
                    result.sent += 1
                    progress.advance(task)
                continue
            records = [{"company": a.company, "external_id": a.account_id} for a in batch]
            results_url = client.submit_bulk(records)
            request_id = results_url.rstrip("/").rsplit("/", 1)[-1]
            _remember_job(con, _Pending(request_id, results_url, batch), run_id)
            result.sent += len(batch)
            answers = client.wait_results(results_url)
            rows = _land(con, request_id, batch, answers, run_id, job_done=True)
            result.count(rows)
            progress.advance(task, len(batch))
    result.requests = client.requests_made
    result.seconds = (utc_now() - started).total_seconds()
    record_runs(con, [run_row(
        run_id, "leadspace", None, dataset, "succeeded", started, pages=result.requests,
        records=result.sent + result.resumed, malformed=result.failed,
    )])
    return result




def _batches(accounts: list[Account], size: int) -> Iterator[list[Account]]:
    for start in range(0, len(accounts), size):
        yield accounts[start:start + size]


def _record_consent(
    con: duckdb.DuckDBPyConnection, run_id: str, mapping: Mapping, dataset: str,
    accounts: int, api_url: str,
) -> None:
    con.execute(
        f"insert into {LEADSPACE_SCHEMA}.consents values (?, ?, ?, ?, ?, ?, ?)",
        [run_id, utc_now(), mapping.fields, [mapping.columns[f] for f in mapping.fields],
         dataset, accounts, api_url],
    )


def _changed(
    con: duckdb.DuckDBPyConnection, accounts: list[Account], refresh_days: int,
    just_landed: set[str],
) -> tuple[list[Account], int]:
    """The accounts to send: never answered, answered for other values, answered with a
    failure, or answered longer than `refresh_days` ago."""
    latest = {
        row[0]: (row[1], row[2], row[3])
        for row in con.execute(
            f"""select external_id, _request_hash, _loaded_at, _error is null
            from {LEADSPACE_SCHEMA}.answers
            where external_id is not null
            qualify row_number() over (partition by external_id order by _loaded_at desc) = 1"""
        ).fetchall()
    }
    cutoff = utc_now() - timedelta(days=refresh_days)
    to_send, skipped = [], 0
    for account in accounts:
        last = latest.get(account.account_id)
        if account.account_id in just_landed and last is not None and last[0] == account.hash:
            continue  # answered a moment ago, by a bulk job of an earlier run
        if last is not None and last[0] == account.hash and last[2] and last[1] > cutoff:
            skipped += 1
        else:
            to_send.append(account)
    return to_send, skipped


def _remember_job(con: duckdb.DuckDBPyConnection, job: _Pending, run_id: str) -> None:
    con.execute(
        f"insert into {LEADSPACE_SCHEMA}.bulk_jobs values (?, ?, ?, ?, ?, ?, ?)",
        [job.request_id, job.results_url, [a.account_id for a in job.accounts],
         [a.hash for a in job.accounts], [",".join(a.fields) for a in job.accounts],
         run_id, utc_now()],
    )


def _resume(
    con: duckdb.DuckDBPyConnection, client: LeadspaceClient, run_id: str,
    result: LeadspaceLoadResult, progress: Progress,
) -> set[str]:
    """Collect the bulk jobs an earlier run submitted but did not land; returns their ids."""
    jobs = con.execute(
        f"select request_id, results_url, external_ids, request_hashes, sent_fields "
        f"from {LEADSPACE_SCHEMA}.bulk_jobs order by submitted_at"
    ).fetchall()
    landed: set[str] = set()
    if not jobs:
        return landed
    task = progress.add_task("earlier bulk jobs collected", total=len(jobs))
    for request_id, url, ids, hashes, fields in jobs:
        accounts = [Account(i, {}, h, f.split(",") if f else [])
                    for i, h, f in zip(ids, hashes, fields, strict=True)]
        try:
            answers = client.wait_results(url)
        except ResultsNotFound:
            log.warning("bulk job %s is unknown to Leadspace: its accounts are sent again",
                        request_id)
            con.execute(f"delete from {LEADSPACE_SCHEMA}.bulk_jobs where request_id = ?",
                        [request_id])
            progress.advance(task)
            continue
        rows = _land(con, request_id, accounts, answers, run_id, job_done=True)
        result.count(rows)
        result.resumed += len(accounts)
        landed.update(ids)
        progress.advance(task)
    return landed


# ---------------------------------------------------------------------------- landing
def _answer_row(answer: object, account: Account | None) -> dict:
    if not isinstance(answer, dict):
        return {"status": None, "external_id": account.account_id if account else None,
                "enrichment_status": None, "_error": "malformed answer (not a JSON object)",
                "_answer": orjson.dumps(answer).decode()}
    data = answer.get("data") if isinstance(answer.get("data"), dict) else {}
    status = answer.get("status")
    error = None
    if answer.get("error") is not None or answer.get("errors") is not None:
        error = _error_text(answer.get("error") or answer.get("errors"))
    elif not isinstance(status, str) or status.lower() != "success":
        error = f"record status {status!r}"
    return {
        "status": status if isinstance(status, str) else None,
        "external_id": (str(answer["external_id"]) if answer.get("external_id")
                        else account.account_id if account else None),
        "enrichment_status": data.get("enrichment_status"),
        "_error": error,
        "_answer": orjson.dumps(answer).decode(),
    }


def _error_text(error: object) -> str:
    if isinstance(error, dict):
        code = error.get("code")
        text = error.get("description") or error.get("message") or ""
        return f"{code}: {text}".strip(": ") if code is not None else str(text)
    return str(error)[:500]


def _company_structure() -> str:
    """The JSON structure `json_transform` types `data.company` with (raw_leadspace.answers)."""
    def shape(sql_type: str) -> object:
        if sql_type.startswith("STRUCT("):
            inner = sql_type[len("STRUCT("):-1]
            return {part.split(" ", 1)[0]: part.split(" ", 1)[1] for part in inner.split(", ")}
        return sql_type
    return orjson.dumps({k: shape(v) for k, v in LEADSPACE_COMPANY_FIELDS.items()}).decode()


COMPANY_STRUCTURE = _company_structure()


def _land(
    con: duckdb.DuckDBPyConnection, request_id: str, accounts: list[Account], answers: list,
    run_id: str, job_done: bool = False,
) -> list[dict]:
    """Land one request's answers (and drop its bulk job row) in one transaction. A sent
    account without an answer is landed as a failure; answers for accounts not sent are
    ignored (logged)."""
    by_id = {a.account_id: a for a in accounts}
    rows: dict[str, dict] = {}
    for answer in answers:
        row = _answer_row(answer, accounts[0] if len(accounts) == 1 else None)
        account_id = row["external_id"]
        if account_id not in by_id:
            log.warning("Leadspace answered for an account not in request %s: ignored",
                        request_id)
            continue
        rows[account_id] = row
    for account_id in by_id:
        rows.setdefault(account_id, {
            "status": None, "external_id": account_id, "enrichment_status": None,
            "_error": "no answer for this record in the results", "_answer": None,
        })
    ordered = [rows[a.account_id] for a in accounts]
    now = utc_now()
    columns = {
        "status": [r["status"] for r in ordered],
        "external_id": [r["external_id"] for r in ordered],
        "enrichment_status": [r["enrichment_status"] for r in ordered],
        "_error": [r["_error"] for r in ordered],
        "_answer": [r["_answer"] for r in ordered],
        "_request_hash": [a.hash for a in accounts],
        "_sent_fields": [",".join(a.fields) for a in accounts],
    }
    with transaction(con):
        con.execute(f"delete from {LEADSPACE_SCHEMA}.answers where _request_id = ?",
                    [request_id])
        con.execute(
            f"""insert into {LEADSPACE_SCHEMA}.answers
            select status, external_id, enrichment_status,
                json_transform(json_extract(_answer, '$.data.company'), '{COMPANY_STRUCTURE}'),
                _error, _answer, _request_hash,
                case when _sent_fields = '' then [] else string_split(_sent_fields, ',') end,
                ?, ?, ?
            from (select
                cast(unnest(?) as varchar) as status,
                cast(unnest(?) as varchar) as external_id,
                cast(unnest(?) as varchar) as enrichment_status,
                cast(unnest(?) as varchar) as _error,
                cast(unnest(?) as varchar) as _answer,
                cast(unnest(?) as varchar) as _request_hash,
                cast(unnest(?) as varchar) as _sent_fields)""",
            [request_id, run_id, now, *columns.values()],
        )
        if job_done:
            con.execute(f"delete from {LEADSPACE_SCHEMA}.bulk_jobs where request_id = ?",
                        [request_id])
    return ordered


def remove_leadspace(con: duckdb.DuckDBPyConnection) -> None:
    """`python -m loaders remove leadspace`: every answer, consent record, pending bulk job and
    Leadspace run, in one transaction."""
    with transaction(con):
        for table in ("answers", "consents", "bulk_jobs"):
            con.execute(f"delete from {LEADSPACE_SCHEMA}.{table}")
        con.execute(f"delete from {LOADER_SCHEMA}.load_runs where source = 'leadspace'")
