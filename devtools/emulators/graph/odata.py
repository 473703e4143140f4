"""What every Graph resource shares: the request as the handlers see it, Graph's error, its
date-times, ids and change keys, and the OData query options `$select`, `$top`, `$skip`,
`$orderby` and `Prefer` (`$filter`: `devtools.emulators.graph.filters`)."""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JSON_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;"
    "charset=utf-8"
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


class GraphError(Exception):
    """An error answered in Graph's JSON shape."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Any
    body: bytes
    request_id: str
    prefer: dict[str, str] = field(default_factory=dict)
    mailbox: str | None = None
    applied: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------- values
def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        text = value[:-1] + "+00:00" if value.endswith("Z") else value
        if "." in text:  # Graph sends 7 fractional digits; Python parses at most 6
            head, _, tail = text.partition(".")
            digits = re.match(r"\d*", tail).group(0)  # type: ignore[union-attr]
            text = f"{head}.{digits[:6]}{tail[len(digits):]}"
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_change_key() -> str:
    return base64.b64encode(secrets.token_bytes(15)).decode()


def _new_id(prefix: str = "AAMkAG") -> str:
    return prefix + base64.urlsafe_b64encode(secrets.token_bytes(39)).decode()


def _etag(change_key: str) -> str:
    return f'W/"{change_key}"'


def _nested(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("/"):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


# ---------------------------------------------------------------------------- query options
def _canonical_select(raw: str | None, known: Iterable[str] | None,
                      entity: str) -> list[str] | None:
    """The $select list with Graph's case-insensitive property names; None when absent."""
    if raw is None:
        return None
    names = [p.strip() for p in raw.split(",") if p.strip()]
    if known is None:
        return names
    lookup = {k.lower(): k for k in known}
    out = []
    for name in names:
        if name.lower() not in lookup:
            raise GraphError(400, "RequestBroker--ParseUri",
                             f"Could not find a property named '{name}' on type "
                             f"'microsoft.graph.{entity}'.")
        out.append(lookup[name.lower()])
    return out


def _int_param(query: dict[str, str], name: str, default: int) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not raw.strip().isdigit():
        raise GraphError(400, "BadRequest", f"Invalid value '{raw}' for query option {name}.")
    return int(raw)


def _top(query: dict[str, str], default: int, maximum: int) -> int:
    top = _int_param(query, "$top", default)
    if top <= 0:
        raise GraphError(400, "BadRequest", "Invalid $top value: must be a positive integer.")
    return min(top, maximum)


def _order(rows: list[Any], orderby: str | None, default_desc: bool,
           default_key: str) -> list[Any]:
    if not orderby:
        if default_key == "receivedDateTime":
            return rows  # already newest first
        return sorted(rows, key=lambda r: (r.get(default_key), r.id), reverse=default_desc)
    parts = orderby.split(",")[0].split()
    path, desc = parts[0], len(parts) > 1 and parts[1].lower() == "desc"

    def key(row: Any) -> tuple[int, Any]:
        value = row.get(path)
        if isinstance(value, str) and _DATETIME.match(value):
            value = _epoch(value)
        if isinstance(value, bool):
            value = int(value)
        return (0, "") if value is None else (1, value)

    try:
        return sorted(rows, key=key, reverse=desc)
    except TypeError as exc:
        raise GraphError(400, "BadRequest", f"Invalid $orderby: {orderby}") from exc


def _parse_prefer(values: list[str]) -> dict[str, str]:
    prefer: dict[str, str] = {}
    for value in values:
        for part in value.split(","):
            name, _, arg = part.strip().partition("=")
            if name:
                prefer[name.strip().lower()] = arg.strip().strip('"')
    return prefer
