"""The dlt side of `bench/dlt_peer.py`: run in dlt's own venv (never the product's), one
configuration per process, so that its wall time, CPU and peak memory are its own.

    <dlt-venv>/bin/python bench/dlt_side.py SPEC.json

SPEC (written by dlt_peer.py): the emulator's URLs and credentials, the (mailbox, folder) pairs
and mailboxes our loader read, the window, the `$select`s, the pipeline directory and database,
and the configuration (extract/normalize workers, file rotation, table nesting). dlt's own
settings go in through its environment variables (EXTRACT__WORKERS, ...), set by the caller.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import dlt
from dlt.sources.rest_api import rest_api_source


def source(spec: dict, parallelized: bool, max_table_nesting: int | None):
    @dlt.resource(name="folders", selected=False)
    def folders():
        yield [{"mailbox_id": m, "folder_id": f} for m, f in spec["folders"]]

    @dlt.resource(name="mailboxes", selected=False)
    def mailboxes():
        yield [{"id": m} for m in spec["mailboxes"]]

    config = {
        "client": {
            "base_url": spec["api_url"] + "/",
            "auth": {
                "type": "oauth2_client_credentials",
                "access_token_url": spec["token_url"],
                "client_id": spec["client_id"],
                "client_secret": spec["client_secret"],
                "access_token_request_data": {"scope": "https://graph.microsoft.com/.default"},
            },
            # Graph's pages: `value`, and `@odata.nextLink` until the last (a deltaLink)
            "paginator": {"type": "json_link", "next_url_path": "['@odata.nextLink']"},
        },
        "resource_defaults": {"write_disposition": "append"},
        "resources": [
            folders(),
            mailboxes(),
            {
                "name": "messages",
                "include_from_parent": ["mailbox_id"],
                "endpoint": {
                    "path": "users/{resources.folders.mailbox_id}/mailFolders/"
                            "{resources.folders.folder_id}/messages/delta",
                    "params": {"$select": spec["message_select"],
                               "$filter": f"receivedDateTime ge {spec['window_start']}"},
                    "headers": {"Prefer": "odata.maxpagesize=1000"},
                    "data_selector": "value",
                },
            },
            {
                "name": "events",
                "endpoint": {
                    "path": "users/{resources.mailboxes.id}/calendarView",
                    "params": {"startDateTime": spec["window_start"],
                               "endDateTime": spec["window_end"],
                               "$select": spec["event_select"], "$top": "1000"},
                    "headers": {"Prefer": 'outlook.timezone="UTC"'},
                    "data_selector": "value",
                },
                "include_from_parent": ["id"],
            },
        ],
    }
    return rest_api_source(config, name="graph", parallelized=parallelized,
                           max_table_nesting=max_table_nesting)


def main(path: str) -> int:
    spec = json.loads(Path(path).read_text())
    run = spec["run"]
    pipeline = dlt.pipeline(
        pipeline_name="dlt_peer", pipelines_dir=run["pipelines_dir"],
        destination=dlt.destinations.duckdb(run["database"]), dataset_name="graph",
        progress=None,
    )
    info = pipeline.run(
        source(spec, run["parallelized"], run["max_table_nesting"]),
        loader_file_format="parquet",
    )
    info.raise_on_failed_jobs()
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print("dlt: rows normalized " + ", ".join(
        f"{table}={rows:,}" for table, rows in sorted(counts.items()) if not table.startswith("_")
    ), flush=True)
    print("dlt: steps " + ", ".join(
        f"{step.step} {(step.finished_at - step.started_at).total_seconds():.1f} s"
        for step in pipeline.last_trace.steps
    ), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
