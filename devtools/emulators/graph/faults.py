"""The fault switches (`Faults`) and where most of them bite: throttling, outages and gateway
timeouts counted over the Graph requests, latency, mailboxes denied, and the per-mailbox
concurrency limit. Empty pages bite in `paging`, malformed messages in `mail`, the token
lifetime in `auth`."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from devtools.emulators.graph.odata import GraphError


@dataclass
class Faults:
    """Fault switches, read on every request (change them while the emulator runs).

    Counters are deterministic: `throttle_every=5` fails requests 5, 10, 15... counted over all
    /v1.0 requests since start."""

    throttle_every: int = 0
    throttle_retry_after: int = 1
    unavailable_every: int = 0
    unavailable_retry_after: int = 1
    gateway_timeout_every: int = 0
    mailbox_concurrency_limit: int = 0
    forbidden_mailboxes: set[str] = field(default_factory=set)
    empty_pages_every: int = 0
    malformed_messages: bool = True
    token_ttl_seconds: int = 3600
    latency_ms: int = 0


class FaultsMixin:
    """The emulator's fault checks, on the state it keeps."""

    faults: Faults
    _lock: threading.Lock
    _inflight: dict[str, int]
    _graph_requests: int

    def _request_faults(self) -> None:
        faults = self.faults
        with self._lock:
            self._graph_requests += 1
            n = self._graph_requests
        if faults.throttle_every and n % faults.throttle_every == 0:
            raise GraphError(429, "TooManyRequests",
                             "Too many requests. Please retry after the indicated time.",
                             {"Retry-After": str(faults.throttle_retry_after)})
        if faults.unavailable_every and n % faults.unavailable_every == 0:
            raise GraphError(503, "ServiceNotAvailable", "Service unavailable. Try again later.",
                             {"Retry-After": str(faults.unavailable_retry_after)})
        if faults.gateway_timeout_every and n % faults.gateway_timeout_every == 0:
            raise GraphError(504, "GatewayTimeout", "The gateway did not receive a timely "
                             "response from the upstream server.")

    def _sleep_latency(self) -> None:
        if self.faults.latency_ms > 0:
            time.sleep(self.faults.latency_ms / 1000)

    def _check_forbidden(self, user: dict[str, Any]) -> None:
        keys = {str(k).lower() for k in self.faults.forbidden_mailboxes}
        names = {user["id"].lower(), (user.get("mail") or "").lower(),
                 (user.get("userPrincipalName") or "").lower()}
        if keys & names:
            raise GraphError(403, "ErrorAccessDenied",
                             "Access is denied. Check credentials and try again.")

    def _mailbox_slot(self, user_id: str) -> _Slot:
        return _Slot(self, user_id)


class _Slot:
    """Counts in-flight requests per mailbox; over the limit answers MailboxConcurrency 429."""

    def __init__(self, emulator: FaultsMixin, user_id: str) -> None:
        self.emulator, self.user_id = emulator, user_id

    def __enter__(self) -> None:
        emu = self.emulator
        with emu._lock:
            emu._inflight[self.user_id] = emu._inflight.get(self.user_id, 0) + 1
            count = emu._inflight[self.user_id]
        limit = emu.faults.mailbox_concurrency_limit
        if limit and count > limit:
            self.__exit__()
            raise GraphError(429, "ApplicationThrottled",
                             "Application is over its MailboxConcurrency limit.",
                             {"Retry-After": str(emu.faults.throttle_retry_after)})

    def __exit__(self, *exc: object) -> None:
        emu = self.emulator
        with emu._lock:
            emu._inflight[self.user_id] -= 1
