"""Leadspace's answers into `raw_leadspace`: consents, pending bulk jobs, answers as returned,
and their removal (`python -m loaders remove leadspace`). Every write is one transaction."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import duckdb
import orjson

from loaders.leadspace.dataset import Account
from loaders.leadspace.mapping import Mapping
from loaders.schema import LEADSPACE_COMPANY_FIELDS, LEADSPACE_SCHEMA, LOADER_SCHEMA
from loaders.warehouse import transaction, utc_now

log = logging.getLogger(__name__)


@dataclass
class PendingJob:
    request_id: str
    results_url: str
    accounts: list[Account] = field(default_factory=list)


def record_consent(
    con: duckdb.DuckDBPyConnection, run_id: str, mapping: Mapping, dataset: str,
    accounts: int, api_url: str,
) -> None:
    con.execute(
        f"insert into {LEADSPACE_SCHEMA}.consents values (?, ?, ?, ?, ?, ?, ?)",
        [run_id, utc_now(), mapping.fields, [mapping.columns[f] for f in mapping.fields],
         dataset, accounts, api_url],
    )


def remember_job(con: duckdb.DuckDBPyConnection, job: PendingJob, run_id: str) -> None:
    con.execute(
        f"insert into {LEADSPACE_SCHEMA}.bulk_jobs values (?, ?, ?, ?, ?, ?, ?)",
        [job.request_id, job.results_url, [a.account_id for a in job.accounts],
         [a.hash for a in job.accounts], [",".join(a.fields) for a in job.accounts],
         run_id, utc_now()],
    )


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


def land_answers(
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
