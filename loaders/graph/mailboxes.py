"""Which org mailboxes to read: `--mailbox` addresses and `--group` members, through Graph.

Groups are expanded with `transitiveMembers` (nested groups included), users are
de-duplicated by id, and the result must hold 2 to 2,500 mailboxes (docs/metrics.md, "The
basics").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from loaders.errors import BadInput
from loaders.graph.transport import GraphClient, GraphNotFound

MIN_MAILBOXES = 2
MAX_MAILBOXES = 2500
USER_SELECT = "id,mail,userPrincipalName,displayName"
_ADDRESS = re.compile(
    r"^[^@\s<>(),;:\"']+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+$"
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass
class Mailbox:
    id: str
    mail: str | None
    userPrincipalName: str | None  # noqa: N815 - Graph's name
    displayName: str | None  # noqa: N815 - Graph's name
    selected_by: list[str] = field(default_factory=list)


def validate_selection(mailboxes: list[str], groups: list[str]) -> None:
    if not mailboxes and not groups:
        raise BadInput(
            "no mailboxes selected: pass --mailbox ADDRESS and/or --group ADDRESS_OR_ID "
            f"({MIN_MAILBOXES} to {MAX_MAILBOXES:,} mailboxes in all)."
        )
    bad = [m for m in mailboxes if not _ADDRESS.match(m.strip())]
    bad += [g for g in groups if not (_ADDRESS.match(g.strip()) or _GUID.match(g.strip()))]
    if bad:
        raise BadInput(
            f"not an email address{' or group id' if groups else ''}: "
            f"{', '.join(repr(b) for b in bad)}; use e.g. --mailbox ann@contoso.com or "
            "--group sales@contoso.com."
        )


def resolve(client: GraphClient, mailboxes: list[str], groups: list[str]) -> list[Mailbox]:
    validate_selection(mailboxes, groups)
    found: dict[str, Mailbox] = {}
    unknown: list[str] = []
    for address in mailboxes:
        user = _find_user(client, address.strip())
        if user is None:
            unknown.append(f"mailbox {address}")
        else:
            _add(found, user, f"mailbox:{address.strip()}")
    for group in groups:
        group_id = _find_group_id(client, group.strip())
        if group_id is None:
            unknown.append(f"group {group}")
            continue
        for member in _group_users(client, group_id):
            _add(found, member, f"group:{group.strip()}")
    if unknown:
        raise BadInput(
            f"Graph knows no {', no '.join(unknown)}: check the spelling, or that the address "
            "is the user's or group's primary SMTP address."
        )
    without_mail = [m for m in found.values() if not m.mail]
    selected = [m for m in found.values() if m.mail]
    if not MIN_MAILBOXES <= len(selected) <= MAX_MAILBOXES:
        extra = f" ({len(without_mail)} members without a mailbox left out)" if without_mail else ""
        raise BadInput(
            f"the selection resolves to {len(selected):,} mailbox"
            f"{'' if len(selected) == 1 else 'es'}{extra}; the enrichment needs between "
            f"{MIN_MAILBOXES} and {MAX_MAILBOXES:,}: add or remove --mailbox/--group."
        )
    return sorted(selected, key=lambda m: m.id)


def _add(found: dict[str, Mailbox], user: dict, how: str) -> None:
    mailbox = found.get(user["id"])
    if mailbox is None:
        mailbox = found[user["id"]] = Mailbox(
            id=user["id"],
            mail=user.get("mail"),
            userPrincipalName=user.get("userPrincipalName"),
            displayName=user.get("displayName"),
        )
    if how not in mailbox.selected_by:
        mailbox.selected_by.append(how)


def _quote(value: str) -> str:
    return value.replace("'", "''")


def _find_user(client: GraphClient, address: str) -> dict | None:
    try:
        return client.get(f"users/{address}", params={"$select": USER_SELECT}).body
    except GraphNotFound:
        pass
    # the address may be the user's mail rather than the UPN
    page = client.get(
        "users", params={"$filter": f"mail eq '{_quote(address)}'", "$select": USER_SELECT}
    )
    return page.value[0] if page.value else None


def _find_group_id(client: GraphClient, group: str) -> str | None:
    if _GUID.match(group):
        try:
            return client.get(f"groups/{group}", params={"$select": "id"}).body["id"]
        except GraphNotFound:
            return None
    page = client.get(
        "groups", params={"$filter": f"mail eq '{_quote(group)}'", "$select": "id,mail"}
    )
    return page.value[0]["id"] if page.value else None


def _group_users(client: GraphClient, group_id: str) -> list[dict]:
    users = []
    for page in client.pages(
        f"groups/{group_id}/transitiveMembers/microsoft.graph.user",
        params={"$select": USER_SELECT, "$top": "999"},
    ):
        users.extend(u for u in page.value if isinstance(u, dict) and u.get("id"))
    return users
