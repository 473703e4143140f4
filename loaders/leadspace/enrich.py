"""`python -m loaders leadspace`: consented firmographics from Leadspace for CRM accounts.

What leaves the machine
- Only the mapped fields, from the CRM accounts (landed by `python -m loaders crm`, or
  the model `crm_accounts` dbt built from another `crm_source`: mapping.crm_accounts_table):
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

Modules: `leadspace_mapping` (the --map fields), `leadspace_dataset` (which accounts),
`leadspace_client` (the HTTP API), `leadspace_landing` (raw_leadspace writes), this one (the
run); the command line is `loaders.cli`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import duckdb
from rich.progress import Progress

from loaders.errors import BadInput
from loaders.leadspace.client import BULK_LIMIT, LeadspaceClient, ResultsNotFound
from loaders.leadspace.dataset import Account, dataset_accounts
from loaders.leadspace.landing import PendingJob, land_answers, record_consent, remember_job
from loaders.leadspace.mapping import check_columns, parse_mapping
from loaders.progress import progress_bar
from loaders.runs import Run
from loaders.schema import LEADSPACE_SCHEMA
from loaders.warehouse import utc_now

log = logging.getLogger(__name__)

DEFAULT_REFRESH_DAYS = 30
SINGLE_BELOW = 10
ENRICHED = frozenset({"company enriched", "person & company enriched"})


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
    run = Run(con, "leadspace")
    run_id = run.id
    result = LeadspaceLoadResult(run_id, dataset, len(accounts) + no_name, no_name=no_name)
    record_consent(con, run_id, mapping, dataset, len(accounts) + no_name, client.base_url)

    with progress_bar(show_progress) as progress:
        resumed = _resume(con, client, run_id, result, progress)
        to_send, result.skipped_unchanged = _changed(con, accounts, refresh_days, resumed)
        task = progress.add_task("accounts answered", total=len(to_send))
        for batch in _batches(to_send, batch_size):
            if len(batch) < SINGLE_BELOW:
                for account in batch:
                    answer = client.enrich_single({"company": account.company,
                                                   "external_id": account.account_id})
                    rows = land_answers(con, f"single:{run_id}:{account.account_id}", [account],
                                 [answer], run_id)
                    result.count(rows)
                    result.sent += 1
                    progress.advance(task)
                continue
            records = [{"company": a.company, "external_id": a.account_id} for a in batch]
            results_url = client.submit_bulk(records)
            request_id = results_url.rstrip("/").rsplit("/", 1)[-1]
            remember_job(con, PendingJob(request_id, results_url, batch), run_id)
            result.sent += len(batch)
            answers = client.wait_results(results_url)
            rows = land_answers(con, request_id, batch, answers, run_id, job_done=True)
            result.count(rows)
            progress.advance(task, len(batch))
    result.requests = client.requests_made
    result.seconds = (utc_now() - run.started_at).total_seconds()
    run.record(dataset, "succeeded", pages=result.requests,
               records=result.sent + result.resumed, malformed=result.failed)
    return result


def _batches(accounts: list[Account], size: int) -> Iterator[list[Account]]:
    for start in range(0, len(accounts), size):
        yield accounts[start:start + size]


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
        rows = land_answers(con, request_id, accounts, answers, run_id, job_done=True)
        result.count(rows)
        result.resumed += len(accounts)
        landed.update(ids)
        progress.advance(task)
    return landed
