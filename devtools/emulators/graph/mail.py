"""Mail: `/users/{id}/mailFolders[/{id|well-known name}[/childFolders]]`, messages
(`/messages[/{id}]`, a folder's `/messages[/{id}]`) and a folder's `/messages/delta`; the
messages as stored (pre-serialized) and rendered; the admin API's message changes."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import orjson

from devtools.emulators.graph.faults import Faults
from devtools.emulators.graph.filters import parse_filter
from devtools.emulators.graph.odata import (
    GraphError,
    _canonical_select,
    _epoch,
    _etag,
    _int_param,
    _nested,
    _new_change_key,
    _new_id,
    _now_stamp,
    _order,
    _Request,
    _top,
)
from devtools.emulators.graph.paging import _Cursor, _DeltaState, _Tombstone

if TYPE_CHECKING:
    from devtools.emulators.graph.mailboxes import _Mailbox

MESSAGE_PROPERTIES = (
    "bccRecipients", "body", "bodyPreview", "categories", "ccRecipients", "changeKey",
    "conversationId", "conversationIndex", "createdDateTime", "flag", "from", "hasAttachments",
    "id", "importance", "inferenceClassification", "internetMessageHeaders", "internetMessageId",
    "isDeliveryReceiptRequested", "isDraft", "isRead", "isReadReceiptRequested",
    "lastModifiedDateTime", "parentFolderId", "receivedDateTime", "replyTo", "sender",
    "sentDateTime", "subject", "toRecipients", "uniqueBody", "webLink",
)
FOLDER_PROPERTIES = (
    "childFolderCount", "displayName", "id", "isHidden", "parentFolderId", "sizeInBytes",
    "totalItemCount", "unreadItemCount",
)


# Messages are kept as pre-serialized `"key":value` fragments: a $select is then a join of
# bytes (fast), and repeated fragments (empty lists, flags, template bodies) are shared.
_INTERNED_KEYS = frozenset((
    "@odata.type", "categories", "hasAttachments", "bodyPreview", "importance", "body",
    "uniqueBody", "isDeliveryReceiptRequested", "isReadReceiptRequested", "isDraft", "isRead",
    "inferenceClassification", "bccRecipients", "ccRecipients", "replyTo", "flag",
))
_INTERN_LIMIT = 200_000
_interned: dict[bytes, bytes] = {}
_key_prefix: dict[str, bytes] = {}
_key_orders: dict[tuple[str, ...], tuple[tuple[str, ...], dict[str, int]]] = {}


def _fragments(record: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, int], tuple[bytes, ...]]:
    keys = tuple(k for k in record if not k.startswith("_"))
    order = _key_orders.get(keys)
    if order is None:
        order = _key_orders.setdefault(keys, (keys, {k: i for i, k in enumerate(keys)}))
    frags = []
    for key in keys:
        prefix = _key_prefix.get(key)
        if prefix is None:
            prefix = _key_prefix.setdefault(key, orjson.dumps(key) + b":")
        frag = prefix + orjson.dumps(record[key])
        if key in _INTERNED_KEYS and len(_interned) < _INTERN_LIMIT:
            frag = _interned.setdefault(frag, frag)
        frags.append(frag)
    return order[0], order[1], tuple(frags)


class _Message:
    __slots__ = ("keys", "index", "frags", "id", "folder", "ts", "unread", "draft", "malformed",
                 "change_key", "etag", "seq", "cseq")

    def __init__(self, record: dict[str, Any], seq: int = 0) -> None:
        self.keys, self.index, self.frags = _fragments(record)
        self.id: str = record["id"]
        self.folder: str | None = record.get("parentFolderId")
        self.ts = _epoch(record.get("receivedDateTime")) or float("-inf")
        self.unread = not record.get("isRead", False)
        self.draft = bool(record.get("isDraft"))
        self.malformed = "from" not in record or record.get("toRecipients") is None
        self.change_key: str = record.get("changeKey") or ""
        self.etag = b'"@odata.etag":' + orjson.dumps(_etag(self.change_key))
        self.seq = seq
        self.cseq = seq

    @property
    def record(self) -> dict[str, Any]:
        return orjson.loads(b"{" + b",".join(self.frags) + b"}")

    def render(self, select: list[str] | None) -> bytes:
        """The message as JSON: all properties, or `@odata.etag`, `id` and the selection."""
        return _Renderer(select)(self)

    def get(self, path: str) -> Any:
        if path == "receivedDateTime":
            return self.ts
        if path == "parentFolderId":
            return self.folder
        if path == "isDraft":
            return self.draft
        return _nested(self.record, path)


class _Renderer:
    """Renders messages as JSON for one `$select` (None: all properties): `@odata.etag`, `id`
    and the selected properties the message has, in the selection's order. The positions of
    those properties are worked out once per property order (messages share a few)."""

    def __init__(self, select: list[str] | None) -> None:
        self._select = select
        self._pickers: dict[int, Callable[[tuple[bytes, ...]], tuple[bytes, ...]]] = {}

    def _picker(self, index: dict[str, int]) -> Callable[[tuple[bytes, ...]], tuple[bytes, ...]]:
        if self._select is None:
            return lambda frags: frags
        positions = [index["id"], *(index[key] for key in self._select
                                    if key in index and key != "id")]
        if len(positions) == 1:
            only = positions[0]
            return lambda frags: (frags[only],)
        return operator.itemgetter(*positions)

    def __call__(self, message: _Message) -> bytes:
        pick = self._pickers.get(id(message.index))
        if pick is None:  # message.index is shared by every message of that property order
            pick = self._pickers[id(message.index)] = self._picker(message.index)
        return b"{" + b",".join((message.etag, *pick(message.frags))) + b"}"


class MailMixin:
    """Mail folders and messages of a mailbox, and the admin API's message changes."""

    faults: Faults
    graph_url: str
    _seq: int

    # ------------------------------------------------------------------ admin API (not Graph)
    def add_message(self, user_id: str, message: dict[str, Any]) -> dict[str, Any]:
        """Add a message to a mailbox (`parentFolderId` may be a well-known name; default
        Inbox). Missing id/changeKey/timestamps are filled in. Returns the stored message."""
        mailbox = self._admin_mailbox(user_id)
        record = dict(message)
        now = _now_stamp()
        record.setdefault("id", _new_id())
        record.setdefault("changeKey", _new_change_key())
        for key in ("createdDateTime", "lastModifiedDateTime", "receivedDateTime",
                    "sentDateTime"):
            record.setdefault(key, now)
        record.setdefault("isDraft", False)
        record.setdefault("isRead", False)
        with mailbox.lock:
            folder = mailbox.folder_id(record.get("parentFolderId") or "inbox")
            if folder is None:
                raise KeyError(f"unknown folder {record.get('parentFolderId')!r}")
            record["parentFolderId"] = folder
            msg = _Message(record, self._next_seq())
            mailbox.messages[msg.id] = msg
            mailbox.version += 1
        return record

    def update_message(self, user_id: str, message_id: str,
                       changes: dict[str, Any]) -> dict[str, Any]:
        """Change a message (a new `parentFolderId` moves it: a removal in the old folder)."""
        mailbox = self._admin_mailbox(user_id)
        with mailbox.lock:
            old = mailbox.messages[message_id]
            record = old.record
            record.update(changes)
            if "parentFolderId" in changes:
                folder = mailbox.folder_id(changes["parentFolderId"])
                if folder is None:
                    raise KeyError(f"unknown folder {changes['parentFolderId']!r}")
                record["parentFolderId"] = folder
            record["changeKey"] = _new_change_key()
            record.setdefault("lastModifiedDateTime", _now_stamp())
            if "lastModifiedDateTime" not in changes:
                record["lastModifiedDateTime"] = _now_stamp()
            seq = self._next_seq()
            if record["parentFolderId"] != old.folder:
                mailbox.tombstones.append(_Tombstone(seq, old.id, folder=old.folder))
            msg = _Message(record, seq)
            msg.cseq = old.cseq
            mailbox.messages[message_id] = msg
            mailbox.version += 1
        return record

    def delete_message(self, user_id: str, message_id: str) -> None:
        mailbox = self._admin_mailbox(user_id)
        with mailbox.lock:
            old = mailbox.messages.pop(message_id)
            mailbox.tombstones.append(_Tombstone(self._next_seq(), old.id, folder=old.folder))
            mailbox.version += 1

    # ------------------------------------------------------------------ mail folders
    def _render_folder(self, mailbox: _Mailbox, folder: dict[str, Any],
                       select: list[str] | None) -> dict[str, Any]:
        total, unread = mailbox.folder_counts().get(folder["id"], (0, 0))
        children = sum(1 for f in mailbox.folders.values()
                       if f.get("parentFolderId") == folder["id"])
        full = {k: v for k, v in folder.items() if not k.startswith("_")}
        full.update({"childFolderCount": children, "totalItemCount": total,
                     "unreadItemCount": unread})
        if select is None:
            return full
        return {"id": full["id"], **{k: full[k] for k in select if k in full}}

    def _folder(self, req: _Request, mailbox: _Mailbox, folder_id: str) -> bytes:
        select = _canonical_select(req.query.get("$select"), FOLDER_PROPERTIES, "mailFolder")
        out = {"@odata.context": f"{self.graph_url}/$metadata#users('{mailbox.user['id']}')"
                                 "/mailFolders/$entity"}
        with mailbox.lock:
            out.update(self._render_folder(mailbox, mailbox.folders[folder_id], select))
        return orjson.dumps(out)

    def _folders(self, req: _Request, mailbox: _Mailbox, parent: str | None,
                 context: str) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        select = _canonical_select(req.query.get("$select"), FOLDER_PROPERTIES, "mailFolder")
        hidden = req.query.get("includeHiddenFolders", "").lower() == "true"
        with mailbox.lock:
            rows = [self._render_folder(mailbox, f, None) for f in mailbox.folders.values()
                    if f.get("parentFolderId") == parent and (hidden or not f.get("isHidden"))]
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            rows = [r for r in rows if predicate(lambda p, r=r: _nested(r, p))]
        cursor = _Cursor("folder", rows, 0, _top(req.query, 10, 1000), req.path, context,
                         select=select)
        return self._serve_page(req, cursor)

    # ------------------------------------------------------------------ messages
    def _visible(self, msg: _Message) -> bool:
        return self.faults.malformed_messages or not msg.malformed

    def _messages(self, req: _Request, mailbox: _Mailbox, folder: str | None) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req)
        select = _canonical_select(req.query.get("$select"), MESSAGE_PROPERTIES, "message")
        with mailbox.lock:
            rows = [m for m in mailbox.sorted_messages()
                    if (folder is None or m.folder == folder) and self._visible(m)]
        if "$filter" in req.query:
            predicate, _ = parse_filter(req.query["$filter"])
            rows = [m for m in rows if predicate(m.get)]
        rows = _order(rows, req.query.get("$orderby"), default_desc=True,
                      default_key="receivedDateTime")
        offset = _int_param(req.query, "$skip", 0)
        uid = mailbox.user["id"]
        context = f"users('{uid}')/messages" if folder is None else \
            f"users('{uid}')/mailFolders('{folder}')/messages"
        cursor = _Cursor("message", rows, offset, _top(req.query, 10, 1000), req.path, context,
                         select=select)
        return self._serve_page(req, cursor)

    def _message(self, req: _Request, mailbox: _Mailbox, message_id: str,
                 folder: str | None) -> bytes:
        select = _canonical_select(req.query.get("$select"), MESSAGE_PROPERTIES, "message")
        msg = mailbox.messages.get(message_id)
        if msg is None or (folder is not None and msg.folder != folder):
            raise GraphError(404, "ErrorItemNotFound",
                             "The specified object was not found in the store.")
        out = {"@odata.context": f"{self.graph_url}/$metadata#users('{mailbox.user['id']}')"
                                 "/messages/$entity"}
        return orjson.dumps(out)[:-1] + b"," + msg.render(select)[1:]

    def _message_delta(self, req: _Request, mailbox: _Mailbox, folder: str) -> bytes:
        if "$skiptoken" in req.query:
            return self._continue(req, delta=True)
        if "$deltatoken" in req.query:
            state = self._delta_state(req.query["$deltatoken"])
        else:
            state = _DeltaState(
                mailbox, "message", since=-1, folder=folder,
                received_after=_delta_filter(req.query.get("$filter")),
                change_type=req.query.get("changeType"),
                select=_canonical_select(req.query.get("$select"), MESSAGE_PROPERTIES,
                                         "message"),
                page_size=_top(req.query, 10, 1000))
        with mailbox.lock:
            upto = self._seq
            rows: list[Any] = []
            if state.change_type != "deleted":
                rows = [m for m in mailbox.sorted_messages() if m.folder == state.folder
                        and m.seq > state.since and self._visible(m)
                        and _received_ok(m, state.received_after)
                        and _change_ok(m, state)]
            if state.since >= 0 and state.change_type in (None, "deleted"):
                rows += [t for t in mailbox.tombstones if t.entity == "message"
                         and t.seq > state.since and t.folder == state.folder]
        next_state = replace(state, since=upto)
        context = f"users('{mailbox.user['id']}')/mailFolders('{folder}')/messages/delta"
        cursor = _Cursor("message", rows, 0, self._delta_page_size(req, state.page_size),
                         req.path, context, select=state.select, delta=next_state)
        return self._serve_page(req, cursor)


def _delta_filter(text: str | None) -> tuple[str, float] | None:
    """Message delta accepts only `receivedDateTime ge|gt {value}`."""
    if not text:
        return None
    match = re.fullmatch(r"\s*receivedDateTime\s+(ge|gt)\s+'?([^'\s]+)'?\s*", text, re.I)
    epoch = _epoch(match.group(2)) if match else None
    if match is None or epoch is None:
        raise GraphError(400, "ErrorInvalidUrlQueryFilter",
                         "The filter is not supported for delta: only "
                         "'receivedDateTime ge {value}' or 'receivedDateTime gt {value}'.")
    return (match.group(1).lower(), epoch)


def _received_ok(msg: _Message, cond: tuple[str, float] | None) -> bool:
    if cond is None:
        return True
    op, value = cond
    return msg.ts > value if op == "gt" else msg.ts >= value


def _change_ok(msg: _Message, state: _DeltaState) -> bool:
    if state.change_type == "created":
        return msg.cseq > state.since
    if state.change_type == "updated":
        return msg.cseq <= state.since
    return True
