"""A Dataverse Web API (v9.2) emulator serving the synthetic organisation's CRM as the
`account` and `contact` tables of a Dynamics 365 environment (`devtools.emulators.dataverse.app`).

CLI: `python -m devtools.emulators.dataverse --data DIR [--port 0]` prints `DATAVERSE_URL=...`,
`GRAPH_LOGIN_URL=...`, `GRAPH_TENANT_ID=...`, `GRAPH_CLIENT_ID=...` and serves until
SIGTERM/SIGINT (the client secret is the synthetic manifest's; it is not printed).
"""

from devtools.emulators.dataverse.app import (
    CONCURRENCY_LIMIT,
    DELTA_EXPIRED_CODE,
    RATE_LIMIT,
    DataverseEmulator,
    Faults,
)

__all__ = ["CONCURRENCY_LIMIT", "DELTA_EXPIRED_CODE", "RATE_LIMIT", "DataverseEmulator",
           "Faults"]
