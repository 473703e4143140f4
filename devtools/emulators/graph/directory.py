"""The directory: `/users`, `/users/{id|userPrincipalName}` (a mailbox's routes are
`devtools.emulators.graph.mailboxes`), `/groups`, `/groups/{id}` and their members and
transitive members, loaded from the organisation's `graph/users.json` and `groups.json`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from devtools.emulators.graph.filters import parse_filter
from devtools.emulators.graph.mailboxes import _Mailbox
from devtools.emulators.graph.odata import GraphError, _canonical_select, _nested, _Request, _top
from devtools.emulators.graph.paging import _Cursor


class DirectoryMixin:
    """Users and groups (and each user's mailbox, if it has one)."""

    data_dir: Path
    graph_url: str

    def _load_directory(self) -> None:
        graph = self.data_dir / "graph"
        self.users: list[dict[str, Any]] = orjson.loads((graph / "users.json").read_bytes())
        self.groups: list[dict[str, Any]] = orjson.loads((graph / "groups.json").read_bytes())
        self._user_keys: dict[str, dict[str, Any]] = {}
        for user in self.users:
            self._user_keys[user["id"].lower()] = user
            if user.get("userPrincipalName"):
                self._user_keys[user["userPrincipalName"].lower()] = user
        self._groups_by_id = {g["id"]: g for g in self.groups}
        self._mailboxes: dict[str, _Mailbox] = {}
        for user in self.users:
            directory = graph / "mailboxes" / user["id"]
            if directory.is_dir():
                self._mailboxes[user["id"]] = _Mailbox(user, directory)

    def _find_user(self, key: str, by_mail: bool = False) -> dict[str, Any] | None:
        user = self._user_keys.get(key.lower())
        if user is None and by_mail:
            user = next((u for u in self.users if (u.get("mail") or "").lower() == key.lower()),
                        None)
        return user

    def _users_route(self, req: _Request, rest: list[str]) -> bytes:
        if not rest:
            self._sleep_latency()
            return self._directory_collection(req, list(self.users), "users")
        user = self._find_user(rest[0])
        if len(rest) == 1:
            self._sleep_latency()
            if user is None:
                raise GraphError(404, "Request_ResourceNotFound",
                                 f"Resource '{rest[0]}' does not exist or one of its queried "
                                 "reference-property objects are not present.")
            return self._directory_object(req, user, "users/$entity")
        if user is None:
            raise GraphError(404, "ErrorInvalidUser",
                             f"The requested user '{rest[0]}' is invalid.")
        mailbox = self._mailboxes.get(user["id"])
        if mailbox is None:
            raise GraphError(404, "MailboxNotEnabledForRESTAPI",
                             "The mailbox is either inactive, soft-deleted, or is hosted "
                             "on-premise.")
        req.mailbox = user["id"]
        self._check_forbidden(user)
        with self._mailbox_slot(user["id"]):
            self._sleep_latency()
            mailbox.ensure_loaded()
            return self._mailbox_route(req, mailbox, rest[1:])

    def _directory_select(self, req: _Request) -> list[str] | None:
        return _canonical_select(req.query.get("$select"), None, "directoryObject")

    def _directory_object(self, req: _Request, obj: dict[str, Any], context: str) -> bytes:
        out = {"@odata.context": f"{self.graph_url}/$metadata#{context}"}
        out.update(_project_directory(obj, self._directory_select(req)))
        return orjson.dumps(out)

    def _directory_collection(self, req: _Request, objects: list[dict[str, Any]],
                              context: str) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            objects = [o for o in objects if predicate(lambda p, o=o: _nested(o, p))]
        page_size = _top(req.query, default=100, maximum=999)
        cursor = _Cursor("directory", objects, 0, page_size, req.path, context,
                         select=self._directory_select(req))
        return self._serve_page(req, cursor)

    def _groups_route(self, req: _Request, rest: list[str]) -> bytes:
        self._sleep_latency()
        groups = [_public_group(g) for g in self.groups]
        if not rest:
            return self._directory_collection(req, groups, "groups")
        group = self._groups_by_id.get(rest[0])
        if group is None:
            raise GraphError(404, "Request_ResourceNotFound",
                             f"Resource '{rest[0]}' does not exist or one of its queried "
                             "reference-property objects are not present.")
        low = [s.lower() for s in rest[1:]]
        if not low:
            return self._directory_object(req, _public_group(group), "groups/$entity")
        if low[0] in ("members", "transitivemembers") and len(low) <= 2:
            members = self._members(group, transitive=low[0] == "transitivemembers")
            cast = low[1] if len(low) == 2 else None
            if cast not in (None, "microsoft.graph.user", "microsoft.graph.group"):
                raise GraphError(400, "BadRequest",
                                 f"Resource not found for the segment '{rest[-1]}'.")
            if cast:
                members = [m for m in members if m["@odata.type"] == f"#{cast}"]
            context = "users" if cast == "microsoft.graph.user" else "directoryObjects"
            return self._directory_collection(req, members, context)
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{rest[1]}'.")

    def _members(self, group: dict[str, Any], transitive: bool) -> list[dict[str, Any]]:
        users_by_id = {u["id"]: u for u in self.users}
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        queue = list(group.get("members", []))
        while queue:
            member_id = queue.pop(0)
            if member_id in seen:
                continue
            seen.add(member_id)
            if member_id in users_by_id:
                out.append({"@odata.type": "#microsoft.graph.user", **users_by_id[member_id]})
            elif member_id in self._groups_by_id:
                nested = self._groups_by_id[member_id]
                out.append({"@odata.type": "#microsoft.graph.group", **_public_group(nested)})
                if transitive:
                    queue.extend(nested.get("members", []))
        return out


def _project_directory(obj: dict[str, Any], select: list[str] | None) -> dict[str, Any]:
    """A directory object; `@odata.type` kept (member lists), `id` only when selected."""
    out: dict[str, Any] = {}
    if "@odata.type" in obj:
        out["@odata.type"] = obj["@odata.type"]
    if select is None:
        out.update({k: v for k, v in obj.items() if not k.startswith(("_", "@"))})
        return out
    lookup = {k.lower(): k for k in obj}
    for name in select:
        key = lookup.get(name.lower())
        out[key or name] = obj.get(key) if key else None
    return out


def _public_group(group: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in group.items() if k != "members" and not k.startswith("_")}
