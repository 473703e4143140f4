"""The raw tables: what the loaders land, exactly as the APIs returned it, plus load metadata.

This module is the single definition of the raw layer. dbt reads these tables through
`source()` in `models/staging/`; nothing downstream reads an API.

Conventions
- Graph properties keep Graph's camelCase names and JSON shapes (nested recipients and
  attendees stay lists of structs). Date-times stay the ISO strings Graph sent.
- Load metadata columns start with an underscore: `_mailbox_id`, `_run_id`, `_loaded_at`,
  `_removed` (a delta `@removed` or an occurrence gone from the calendar view), `_record_hash`.
- Keys: messages and events are unique on (`_mailbox_id`, `id`): the same message in three
  mailboxes is three rows here, and is counted once downstream.
- Leadspace (`raw_leadspace`): one row per answer, keyed by (`external_id`, `_request_id`);
  `company` keeps Leadspace's snake_case names, typed; the whole answer stays in `_answer`.
"""

from __future__ import annotations

EMAIL_ADDRESS = "STRUCT(emailAddress STRUCT(name VARCHAR, address VARCHAR))"
DATE_TIME_TZ = "STRUCT(dateTime VARCHAR, timeZone VARCHAR)"
ATTENDEE = (
    "STRUCT(type VARCHAR, status STRUCT(response VARCHAR, time VARCHAR), "
    "emailAddress STRUCT(name VARCHAR, address VARCHAR))"
)
REMOVED = 'STRUCT(reason VARCHAR)'

# The Graph properties the loader asks for ($select) and lands. Nothing else is requested:
# never body, bodyPreview, uniqueBody or subject.
MESSAGE_FIELDS: dict[str, str] = {
    "id": "VARCHAR",
    "internetMessageId": "VARCHAR",
    "conversationId": "VARCHAR",
    "parentFolderId": "VARCHAR",
    "isDraft": "BOOLEAN",
    "sentDateTime": "VARCHAR",
    "receivedDateTime": "VARCHAR",
    "lastModifiedDateTime": "VARCHAR",
    "from": EMAIL_ADDRESS,
    "sender": EMAIL_ADDRESS,
    "toRecipients": f"{EMAIL_ADDRESS}[]",
    "ccRecipients": f"{EMAIL_ADDRESS}[]",
    "bccRecipients": f"{EMAIL_ADDRESS}[]",
}

EVENT_FIELDS: dict[str, str] = {
    "id": "VARCHAR",
    "iCalUId": "VARCHAR",
    "seriesMasterId": "VARCHAR",
    "type": "VARCHAR",
    "isCancelled": "BOOLEAN",
    "isAllDay": "BOOLEAN",
    "start": DATE_TIME_TZ,
    "end": DATE_TIME_TZ,
    "organizer": EMAIL_ADDRESS,
    "attendees": f"{ATTENDEE}[]",
    "lastModifiedDateTime": "VARCHAR",
}

USER_FIELDS: dict[str, str] = {
    "id": "VARCHAR",
    "mail": "VARCHAR",
    "userPrincipalName": "VARCHAR",
    "displayName": "VARCHAR",
}

FOLDER_FIELDS: dict[str, str] = {
    "id": "VARCHAR",
    "displayName": "VARCHAR",
    "parentFolderId": "VARCHAR",
    "totalItemCount": "BIGINT",
}

# Leadspace's answer for one company (Enrichment API, `data.company`): the fields the product
# uses, typed; the whole answer is also kept as JSON text in `_answer`.
LEADSPACE_AMOUNT = "STRUCT(exact DOUBLE, range VARCHAR)"
LEADSPACE_ADDRESS = (
    "STRUCT(country VARCHAR, state VARCHAR, city VARCHAR, region VARCHAR, address VARCHAR, "
    "zipcode VARCHAR)"
)
LEADSPACE_COMPANY_FIELDS: dict[str, str] = {
    "ls_id": "VARCHAR",
    "ug_company_id": "VARCHAR",
    "name": "VARCHAR",
    "website": "VARCHAR",
    "industry": "VARCHAR",
    "sub_industry": "VARCHAR",
    "sic": "VARCHAR",
    "naics": "VARCHAR",
    "employees": LEADSPACE_AMOUNT,
    "revenue_dollar": LEADSPACE_AMOUNT,
    "address": LEADSPACE_ADDRESS,
    "matching_confidence": "STRUCT(level VARCHAR)",
}
LEADSPACE_COMPANY = (
    "STRUCT("
    + ", ".join(f"{name} {sql_type}" for name, sql_type in LEADSPACE_COMPANY_FIELDS.items())
    + ")"
)

GRAPH_SCHEMA = "raw_graph"
CRM_SCHEMA = "raw_crm"
LOADER_SCHEMA = "raw_loader"
LEADSPACE_SCHEMA = "raw_leadspace"


def _cols(fields: dict[str, str]) -> str:
    return ",\n    ".join(f'"{name}" {sql_type}' for name, sql_type in fields.items())


RAW_DDL: list[str] = [
    f"create schema if not exists {GRAPH_SCHEMA}",
    f"create schema if not exists {CRM_SCHEMA}",
    f"create schema if not exists {LOADER_SCHEMA}",
    f"create schema if not exists {LEADSPACE_SCHEMA}",
    # CRM snapshots: every column of the user's file, as text. The loader replaces each table
    # as a whole; these empty shapes only exist so that dbt builds before the first snapshot.
    f"""create table if not exists {CRM_SCHEMA}.accounts (
    "account_id" VARCHAR, "name" VARCHAR, "website" VARCHAR, "city" VARCHAR, "country" VARCHAR,
    "_source_file" VARCHAR, "_loaded_at" TIMESTAMP
)""",
    f"""create table if not exists {CRM_SCHEMA}.contacts (
    "contact_id" VARCHAR, "account_id" VARCHAR, "email" VARCHAR,
    "_source_file" VARCHAR, "_loaded_at" TIMESTAMP
)""",
    # The org mailboxes selected by the last run (replaced as a whole by each run).
    f"""create table if not exists {GRAPH_SCHEMA}.users (
    {_cols(USER_FIELDS)},
    "_selected_by" VARCHAR[],
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)""",
    f"""create table if not exists {GRAPH_SCHEMA}.mail_folders (
    {_cols(FOLDER_FIELDS)},
    "_mailbox_id" VARCHAR,
    "_excluded_reason" VARCHAR,
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)""",
    f"""create table if not exists {GRAPH_SCHEMA}.messages (
    {_cols(MESSAGE_FIELDS)},
    "_mailbox_id" VARCHAR,
    "_folder_id" VARCHAR,
    "_removed" BOOLEAN,
    "_record_hash" VARCHAR,
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)""",
    f"""create table if not exists {GRAPH_SCHEMA}.events (
    {_cols(EVENT_FIELDS)},
    "_mailbox_id" VARCHAR,
    "_removed" BOOLEAN,
    "_record_hash" VARCHAR,
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)""",
    # Records Graph sent that could not be typed: kept whole (as JSON text), counted, never lost.
    f"""create table if not exists {GRAPH_SCHEMA}.malformed_records (
    "_mailbox_id" VARCHAR,
    "stream" VARCHAR,
    "record" VARCHAR,
    "problem" VARCHAR,
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)""",
    # Where each (mailbox, stream) stands: the next page to fetch (resume) or the delta link.
    f"""create table if not exists {LOADER_SCHEMA}.graph_sync_state (
    "mailbox_id" VARCHAR,
    "stream" VARCHAR,
    "window_start" TIMESTAMP,
    "next_link" VARCHAR,
    "delta_link" VARCHAR,
    "updated_at" TIMESTAMP
)""",
    # One row per run, mailbox and stream: counts, duration and status.
    f"""create table if not exists {LOADER_SCHEMA}.load_runs (
    "run_id" VARCHAR,
    "source" VARCHAR,
    "mailbox_id" VARCHAR,
    "stream" VARCHAR,
    "status" VARCHAR,
    "started_at" TIMESTAMP,
    "finished_at" TIMESTAMP,
    "duration_seconds" DOUBLE,
    "pages" BIGINT,
    "records" BIGINT,
    "removed" BIGINT,
    "malformed" BIGINT,
    "error" VARCHAR
)""",
    # Leadspace: one row per answer (a record of a bulk job or a single call), as returned:
    # `status`, `external_id` (our account id), `data.enrichment_status` and `data.company`,
    # plus what was asked (`_request_hash` of the company fields sent, `_sent_fields`), the
    # per-record error when the record failed, and where it came from. An account answered
    # twice (its mapped fields changed, or the refresh interval passed) has two rows.
    f"""create table if not exists {LEADSPACE_SCHEMA}.answers (
    "status" VARCHAR,
    "external_id" VARCHAR,
    "enrichment_status" VARCHAR,
    "company" {LEADSPACE_COMPANY},
    "_error" VARCHAR,
    "_answer" VARCHAR,
    "_request_hash" VARCHAR,
    "_sent_fields" VARCHAR[],
    "_request_id" VARCHAR,
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)""",
    # Every consent given to send account data to Leadspace: when, which fields from which
    # CRM columns, for which dataset (all accounts or a segment), and where it was sent.
    f"""create table if not exists {LEADSPACE_SCHEMA}.consents (
    "run_id" VARCHAR,
    "consented_at" TIMESTAMP,
    "fields" VARCHAR[],
    "columns" VARCHAR[],
    "dataset" VARCHAR,
    "accounts_in_dataset" BIGINT,
    "api_url" VARCHAR
)""",
    # Bulk jobs submitted and not yet landed (an interrupted run polls them first, so what
    # was paid for is never asked again). A row is deleted when its results land.
    f"""create table if not exists {LEADSPACE_SCHEMA}.bulk_jobs (
    "request_id" VARCHAR,
    "results_url" VARCHAR,
    "external_ids" VARCHAR[],
    "request_hashes" VARCHAR[],
    "sent_fields" VARCHAR[],
    "run_id" VARCHAR,
    "submitted_at" TIMESTAMP
)""",
]


# ---------------------------------------------------------------------------- DATAVERSE
# Dataverse (`raw_dataverse`, `python -m loaders dataverse`): `account` and `contact` with the
# logical names Synapse Link / Fabric Link export, so that the dataverse staging models read
# either. The contact's parent customer lookup (`_parentcustomerid_value` and its
# lookuplogicalname annotation in the Web API) lands as `parentcustomerid` and
# `parentcustomeridtype` ('account' or 'contact'). Keys: `accountid`, `contactid`. Created by
# the Dataverse loader only (a warehouse without Dataverse has no such schema).
DATAVERSE_SCHEMA = "raw_dataverse"
DATAVERSE_ACCOUNT_FIELDS: dict[str, str] = {
    "accountid": "VARCHAR",
    "name": "VARCHAR",
    "websiteurl": "VARCHAR",
    "address1_city": "VARCHAR",
    "address1_country": "VARCHAR",
    "statecode": "INTEGER",
}
DATAVERSE_CONTACT_FIELDS: dict[str, str] = {
    "contactid": "VARCHAR",
    "emailaddress1": "VARCHAR",
    "emailaddress2": "VARCHAR",
    "emailaddress3": "VARCHAR",
    "parentcustomerid": "VARCHAR",
    "parentcustomeridtype": "VARCHAR",
    "statecode": "INTEGER",
}
DATAVERSE_TABLES: dict[str, dict[str, str]] = {
    "account": DATAVERSE_ACCOUNT_FIELDS,
    "contact": DATAVERSE_CONTACT_FIELDS,
}


def _dataverse_table(name: str, fields: dict[str, str]) -> str:
    return f"""create table if not exists {name} (
    {_cols(fields)},
    "_run_id" VARCHAR,
    "_loaded_at" TIMESTAMP
)"""


DATAVERSE_DDL: list[str] = [
    f"create schema if not exists {DATAVERSE_SCHEMA}",
    *(_dataverse_table(f"{DATAVERSE_SCHEMA}.{table}", fields)
      for table, fields in DATAVERSE_TABLES.items()),
    # A full read lands here until its last page, then replaces the table in one
    # transaction (with the deltaLink): a read killed half-way leaves the table as it was.
    *(_dataverse_table(f"{LOADER_SCHEMA}.dataverse_full_{table}", fields)
      for table, fields in DATAVERSE_TABLES.items()),
    # Where each table stands: the deltaLink of its last complete read, and the nextLink of
    # a read under way (`reading`: 'full' or 'delta'), committed with the rows of each page.
    f"""create table if not exists {DATAVERSE_SCHEMA}._sync_state (
    "table_name" VARCHAR,
    "delta_link" VARCHAR,
    "next_link" VARCHAR,
    "reading" VARCHAR,
    "updated_at" TIMESTAMP
)""",
]
