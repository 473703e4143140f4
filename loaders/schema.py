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

GRAPH_SCHEMA = "raw_graph"
CRM_SCHEMA = "raw_crm"
LOADER_SCHEMA = "raw_loader"


def _cols(fields: dict[str, str]) -> str:
    return ",\n    ".join(f'"{name}" {sql_type}' for name, sql_type in fields.items())


RAW_DDL: list[str] = [
    f"create schema if not exists {GRAPH_SCHEMA}",
    f"create schema if not exists {CRM_SCHEMA}",
    f"create schema if not exists {LOADER_SCHEMA}",
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
]
