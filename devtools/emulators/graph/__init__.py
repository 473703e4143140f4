"""A Microsoft Graph v1.0 emulator serving a synthetic organisation (see `devtools.synthetic`).

It speaks HTTP on loopback with the shapes, paging, errors and throttling Microsoft documents,
so the Graph loader can be exercised end to end without a tenant. Like Microsoft's, its
identity platform ("login") and Graph are two origins:

- login, always over https (MSAL, the loaders' client, accepts nothing else), with a
  certificate authority made at start-up (`ca_bundle`: what REQUESTS_CA_BUNDLE must name):
  `GET /{tenant}/v2.0/.well-known/openid-configuration` (the OpenID configuration MSAL reads
  first) and `POST /{tenant}/oauth2/v2.0/token` (client credentials, with the client secret or
  a certificate's signed client assertion, checked as Entra checks them: `register_certificate`
  / `--client-certificate` uploads a certificate to the app registration)
- Graph, over http (or https with `tls=True` / `--tls`), with Bearer checks on every call:
  `/v1.0/users`, `/users/{id|userPrincipalName}`, `/groups`, `/groups/{id}`,
  `/groups/{id}/members|transitiveMembers[/microsoft.graph.user|group]`
- `/users/{id}/mailFolders[/{id|well-known name}[/childFolders|/messages[/delta]]]`,
  `/users/{id}/messages[/{id}]`
- `/users/{id}/calendarView[/delta]`, `/users/{id}/events[/{id}]`

Paging links carry opaque tokens mapped to server-side state. Faults (throttling, outages,
mailbox concurrency, access denied, empty pages, token expiry, latency) are switched at run time
through `GraphEmulator.faults`; mailbox changes between two syncs through `add_message`,
`update_message`, `delete_message`, `add_event`, `update_event`, `delete_event`.

The package is split by resource, as `loaders/` is by source: `app` (the two origins, routing,
Graph's error JSON, the request log), `auth` (the token endpoint, the OpenID configuration,
the Bearer check), `certificate` (certificates uploaded to the app registration, client
assertions), `directory` (users, groups, members), `mailboxes` (a user's mailbox store and the
routes under `/users/{id}/`), `mail` (mail folders, messages and their delta), `events` (the
calendar: calendarView, events and their delta), `paging` (next and delta links), `faults`,
`odata` and `filters` (the query options), `cli` (`python -m devtools.emulators.graph`).

CLI: `python -m devtools.emulators.graph --data DIR [--port 0] [--token-ttl 3600]
[--latency-ms 0] [--tls] [--client-certificate PEM ...]` prints `GRAPH_API_URL=...`,
`GRAPH_LOGIN_URL=...`, `GRAPH_TENANT_ID=...`, `GRAPH_CLIENT_ID=...` and
`REQUESTS_CA_BUNDLE=...` and serves until SIGTERM/SIGINT.
"""

from devtools.emulators.graph.app import LOGGED_HEADERS, GraphEmulator, RequestLog
from devtools.emulators.graph.certificate import CERT_DOCS, JWT_BEARER
from devtools.emulators.graph.cli import main
from devtools.emulators.graph.events import EVENT_PROPERTIES, WINDOWS_TO_IANA
from devtools.emulators.graph.faults import Faults
from devtools.emulators.graph.filters import Getter, Predicate, parse_filter
from devtools.emulators.graph.mail import FOLDER_PROPERTIES, MESSAGE_PROPERTIES
from devtools.emulators.graph.mailboxes import DELTA_SEGMENTS
from devtools.emulators.graph.odata import JSON_TYPE, GraphError
from devtools.emulators.graph.paging import MAX_CURSORS, MAX_DELTA_STATES

# the public names of the single module this package replaced: every import of them keeps working
__all__ = [
    "CERT_DOCS", "DELTA_SEGMENTS", "EVENT_PROPERTIES", "FOLDER_PROPERTIES", "JSON_TYPE",
    "JWT_BEARER", "LOGGED_HEADERS", "MAX_CURSORS", "MAX_DELTA_STATES", "MESSAGE_PROPERTIES",
    "WINDOWS_TO_IANA", "Faults", "Getter", "GraphEmulator", "GraphError", "Predicate",
    "RequestLog", "main", "parse_filter",
]
