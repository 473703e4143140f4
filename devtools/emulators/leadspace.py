"""A Leadspace Enrichment API emulator answering for the synthetic organisation's companies.

It speaks HTTP on loopback as Leadspace's technical specifications (Single Direct API v4,
Bulk API v4) describe the enrichment API, so the Leadspace loader runs end to end without an
account:

- `POST /enrichment/enrich/single`: one record `{company: {name, website, address: {country,
  state, city, street, postalcode}}, external_id}` -> 200 `{status, external_id, data:
  {enrichment_status, company}}`; 400 (error envelope) without a company name or with a body
  that is not JSON.
- `POST /enrichment/enrich/bulk`: `{data: [record, ...]}` (1..500) -> 202 `{"id":
  "/v3/enrichment/results/<bulk id>"}`; a record without a company name fails alone (error
  1200 "Invalid Input" in its result), not the bulk.
- `GET /v3/enrichment/results/<bulk id>`: 204 while processing (the first
  `faults.processing_polls` polls), then 200 `{"results": [...]}`; 404 for an unknown id.
- Every call needs `Authorization: Bearer <key>` (401, no body, otherwise); 415 without a
  JSON content type on POST; 427 (Leadspace's own code) when the program's credits do not
  cover the request; 429 with `Retry-After` over the rate (30 requests per second, as
  documented) or on the deterministic `faults.throttle_every`.

The companies are the synthetic CRM accounts (`crm/accounts.csv` of the generator's output):
each gets deterministic firmographics keyed by a hash of its normalised name, and about one
in eight is unknown to the emulated graph (answered "Not Enriched"). Matching normalises
names (case, punctuation, legal suffixes such as Inc, Ltd, GmbH, SAS, B.V., K.K.) and
websites (scheme, `www.`, path, case); `matching_confidence.level` follows how much was sent
and how well name, website and location agree (see `_confidence`).

Where the published documents are silent the emulator chooses, and says so: a failed record
is `{status: "failure", external_id, error: {code, description}}` (the codes 1100/1200 are
documented, their place in the record is not); credits are charged one per record.

Faults are switched at run time through `LeadspaceEmulator.faults`; `requests` is the log of
what was received (method, path, JSON body, status; never the Authorization header).

CLI: `python -m devtools.emulators.leadspace --data DIR [--port 0] [--key KEY]` prints
`LEADSPACE_API_URL=...` and serves until SIGTERM/SIGINT (the key is not printed).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import math
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from devtools.emulators.graph import RequestLog
from devtools.emulators.server import EmulatorHandler, LoopbackServer

DEMO_KEY = "demo-leadspace-perpetual-key"
BULK_LIMIT = 500
DOCUMENTED_RATE = 30
UNKNOWN_SHARE = 0.12  # share of the synthetic companies the emulated graph does not know

LEGAL_SUFFIXES = frozenset({
    "inc", "incorporated", "ltd", "limited", "llc", "llp", "plc", "corp", "corporation", "co",
    "company", "gmbh", "ag", "sa", "sas", "sarl", "bv", "nv", "pty", "kk", "oy", "ab", "spa",
    "srl", "se",
})
COUNTRY_ALIASES = {
    "us": "united states", "usa": "united states", "united states of america": "united states",
    "uk": "united kingdom", "gb": "united kingdom", "great britain": "united kingdom",
    "de": "germany", "deutschland": "germany", "fr": "france", "nl": "netherlands",
    "the netherlands": "netherlands", "au": "australia", "jp": "japan",
}
US_STATES = {"seattle": "WA", "san francisco": "CA", "new york": "NY", "boston": "MA"}
# industry -> (sub-industries, SIC, NAICS)
INDUSTRY_CODES: dict[str, tuple[tuple[str, ...], str, str]] = {
    "Manufacturing": (("Industrial Machinery", "Electronics"), "3559", "333249"),
    "Financial Services": (("Banking", "Insurance", "Investment Management"), "6021", "522110"),
    "Retail": (("E-commerce", "Specialty Retail"), "5961", "454110"),
    "Healthcare": (("Hospitals", "Medical Devices"), "8062", "622110"),
    "Software": (("Enterprise Software", "Developer Tools", "Security"), "7372", "511210"),
    "Logistics": (("Freight", "Warehousing"), "4731", "488510"),
    "Energy": (("Utilities", "Renewables"), "4911", "221118"),
    "Media": (("Publishing", "Broadcasting"), "2711", "513110"),
    "Public Sector": (("Government Services",), "9199", "921190"),
    "Education": (("Higher Education", "E-learning"), "8221", "611310"),
}
EMPLOYEE_RANGES = ((10, "1-10"), (50, "11-50"), (200, "51-200"), (500, "201-500"),
                   (1000, "501-1000"), (5000, "1001-5000"), (10000, "5001-10000"))
REVENUE_RANGES = ((1e6, "$0 - $1M"), (1e7, "$1M - $10M"), (5e7, "$10M - $50M"),
                  (1e8, "$50M - $100M"), (5e8, "$100M - $500M"), (1e9, "$500M - $1B"))


# ---------------------------------------------------------------------------- normalising
def normalise_name(name: str) -> str:
    """Lower case, punctuation dropped, legal suffixes removed: 'Acme Labs, Inc.' -> 'acme labs'."""
    text = re.sub(r"[^\w\s]", " ", name.lower().replace(".", ""))
    words = [w for w in text.split() if w]
    while len(words) > 1 and words[-1] in LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def normalise_website(website: str) -> str:
    """'HTTPS://WWW.Acme.co.uk/about' -> 'acme.co.uk'."""
    host = website.strip().lower()
    host = re.sub(r"^[a-z]+://", "", host).split("/", 1)[0].split(":", 1)[0]
    return host.removeprefix("www.").strip(".")


def _same_site(a: str, b: str) -> bool:
    return bool(a and b) and (a == b or a.endswith("." + b) or b.endswith("." + a))


def _country(value: str) -> str:
    text = value.strip().lower()
    return COUNTRY_ALIASES.get(text, text)


# ---------------------------------------------------------------------------- the graph
@dataclass(frozen=True)
class Company:
    key: str  # normalised name
    domain: str
    answer: dict[str, Any]  # `data.company` as answered (without matching_confidence)


def _fraction(digest: bytes, i: int) -> float:
    return int.from_bytes(digest[i:i + 4], "big") / 2**32


def _bucket(value: float, ranges: tuple[tuple[float, str], ...], top: str) -> str:
    for limit, label in ranges:
        if value <= limit:
            return label
    return top


def build_company(name: str, website: str, city: str, country: str, industry: str) -> Company:
    """Deterministic firmographics for one company, keyed by its normalised name."""
    key = normalise_name(name)
    digest = hashlib.sha256(key.encode()).digest()
    industry = industry if industry in INDUSTRY_CODES else sorted(INDUSTRY_CODES)[digest[0] % 10]
    subs, sic, naics = INDUSTRY_CODES[industry]
    employees = int(round(math.exp(math.log(8) + _fraction(digest, 4) * math.log(60000 / 8))))
    revenue = float(round(employees * (120_000 + 280_000 * _fraction(digest, 8)), -3))
    domain = normalise_website(website) if website else ""
    state = US_STATES.get(city.lower()) if _country(country) == "united states" else None
    ls_id = digest[12:24].hex()
    answer: dict[str, Any] = {
        "ls_id": ls_id,
        "ug_company_id": ls_id,
        "name": name.strip(),
        "website": f"www.{domain}" if domain else None,
        "industry": industry,
        "sub_industry": subs[digest[1] % len(subs)],
        "sic": sic if digest[2] % 20 else None,  # about 1 in 20 without SIC
        "naics": naics,
        "employees": {"exact": employees,
                      "range": _bucket(employees, EMPLOYEE_RANGES, "10000+")},
        "revenue_dollar": ({"exact": revenue, "range": _bucket(revenue, REVENUE_RANGES, "$1B+")}
                           if digest[3] % 10 else None),  # about 1 in 10 without revenue
        "address": {"country": country or None, "state": state, "city": city or None},
    }
    return Company(key, domain, answer)


def load_companies(data_dir: Path) -> list[Company]:
    path = data_dir / "crm" / "accounts.csv"
    if not path.exists():
        return []
    companies = []
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            name = (row.get("name") or "").strip()
            if not name:
                continue
            key_digest = hashlib.sha256(normalise_name(name).encode()).digest()
            if _fraction(key_digest, 28) < UNKNOWN_SHARE:
                continue  # not in the emulated graph: answered "Not Enriched"
            companies.append(build_company(
                name, row.get("website") or "", row.get("city") or "", row.get("country") or "",
                row.get("industry") or "",
            ))
    return companies


# ---------------------------------------------------------------------------- faults
@dataclass
class Faults:
    """Fault switches, read on every request (change them while the emulator runs).

    `throttle_every=3` answers 429 to requests 3, 6, 9... (counted over all API requests);
    `credits=None` is an unlimited program; `fail_external_ids` fail with 1100 Internal
    Error."""

    rate_limit_per_second: int = DOCUMENTED_RATE
    throttle_every: int = 0
    retry_after_seconds: int = 1
    processing_polls: int = 1
    credits: int | None = None
    fail_external_ids: set[str] = field(default_factory=set)
    latency_ms: int = 0


@dataclass
class _Job:
    results: list[dict[str, Any]]
    polls: int = 0


class _Reject(Exception):
    def __init__(self, status: int, error: str | None, headers: dict[str, str] | None = None):
        super().__init__(error or str(status))
        self.status, self.error, self.headers = status, error, headers or {}


# ---------------------------------------------------------------------------- the emulator
class LeadspaceEmulator(LoopbackServer):
    thread_name = "leadspace-emulator"

    def __init__(self, data_dir: str | Path | None = None, host: str = "127.0.0.1",
                 port: int = 0, key: str = DEMO_KEY,
                 companies: list[Company] | None = None) -> None:
        self.key = key
        self.companies = companies if companies is not None else (
            load_companies(Path(data_dir)) if data_dir else [])
        self._by_name: dict[str, Company] = {}
        self._by_domain: dict[str, Company] = {}
        for company in self.companies:
            self._by_name.setdefault(company.key, company)
            if company.domain:
                self._by_domain.setdefault(company.domain, company)
        self.faults = Faults()
        self.requests = RequestLog()
        self.credits_used = 0
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}
        self._count = 0
        self._recent: deque[float] = deque()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    def bodies(self, path: str) -> list[Any]:
        """The JSON bodies received on `path` (tests read what left the loader)."""
        return [r["body"] for r in self.requests if r["path"] == path]

    # ------------------------------------------------------------------ matching
    def match(self, company: dict[str, Any]) -> tuple[Company | None, str | None]:
        """The company a record matches and the confidence level, or (None, None)."""
        name = normalise_name(str(company.get("name") or ""))
        website = normalise_website(str(company.get("website") or ""))
        found = self._by_name.get(name) if name else None
        by_name = found is not None
        if found is None and website:
            found = self._by_domain.get(website)
            if found is None:
                for domain, candidate in self._by_domain.items():
                    if _same_site(website, domain):
                        found = candidate
                        break
        if found is None:
            return None, None
        return found, _confidence(found, by_name, website, company.get("address"))

    def answer(self, record: Any) -> dict[str, Any]:
        external_id = record.get("external_id") if isinstance(record, dict) else None
        company = record.get("company") if isinstance(record, dict) else None
        if not isinstance(company, dict) or not str(company.get("name") or "").strip():
            return {"status": "failure", "external_id": external_id,
                    "error": {"code": 1200, "description": "Invalid Input"}}
        if external_id is not None and str(external_id) in self.faults.fail_external_ids:
            return {"status": "failure", "external_id": external_id,
                    "error": {"code": 1100, "description": "Internal Error"}}
        found, level = self.match(company)
        if found is None:
            return {"status": "success", "external_id": external_id,
                    "data": {"enrichment_status": "Not Enriched"}}
        enriched = {**found.answer, "matching_confidence": {"level": level}}
        return {"status": "success", "external_id": external_id,
                "data": {"enrichment_status": "Company Enriched", "company": enriched}}

    # ------------------------------------------------------------------ HTTP
    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        started = time.perf_counter()
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        path = urlsplit(handler.path).path
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        status, payload, headers = 500, b"", {}
        try:
            if self.faults.latency_ms:
                time.sleep(self.faults.latency_ms / 1000)
            self._gate(handler)
            status, payload = self._route(method, path, handler, raw, body)
        except _Reject as exc:
            status, headers = exc.status, exc.headers
            payload = self._error(exc.error) if exc.error else b""
        except Exception as exc:  # noqa: BLE001 - answered as a server error, never a crash
            status, payload = 500, self._error(f"Internal server error: {exc!r}")
        # Logged before the answer leaves, so a client that has its answer finds it logged.
        self.requests.append({
            "method": method, "path": path, "body": body, "status": status,
            "duration_ms": round((time.perf_counter() - started) * 1000, 3),
        })
        handler.send_response(status)
        if payload:
            handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        if payload:
            handler.wfile.write(payload)

    def _gate(self, handler: BaseHTTPRequestHandler) -> None:
        auth = handler.headers.get("Authorization") or ""
        if not (auth.startswith("Bearer ") and secrets.compare_digest(auth[7:], self.key)):
            raise _Reject(401, None)  # documented: the body of a 401 is to be ignored
        faults = self.faults
        with self._lock:
            self._count += 1
            count = self._count
            now = time.monotonic()
            while self._recent and self._recent[0] < now - 1:
                self._recent.popleft()
            self._recent.append(now)
            over_rate = (faults.rate_limit_per_second
                         and len(self._recent) > faults.rate_limit_per_second)
        if over_rate or (faults.throttle_every and count % faults.throttle_every == 0):
            raise _Reject(429, "Rate limit exceeded",
                          {"Retry-After": str(faults.retry_after_seconds)})

    def _route(self, method: str, path: str, handler: BaseHTTPRequestHandler, raw: bytes,
               body: Any) -> tuple[int, bytes]:
        if path in ("/enrichment/enrich/single", "/enrichment/enrich/bulk"):
            if method != "POST":
                raise _Reject(405, "Invalid HTTP method")
            if "json" not in (handler.headers.get("Content-Type") or "").lower():
                raise _Reject(415, "Bad or missing HTTP headers: send application/json")
            if not isinstance(body, dict):
                raise _Reject(400, "The JSON format is invalid")
            if path.endswith("/single"):
                return self._single(body)
            return self._bulk(body)
        match = re.fullmatch(r"/v3/enrichment/results/([\w-]+)", path)
        if match:
            if method != "GET":
                raise _Reject(405, "Invalid HTTP method")
            return self._results(match.group(1))
        raise _Reject(404, f"No such endpoint: {method} {path}")

    def _charge(self, records: int) -> None:
        with self._lock:
            credits = self.faults.credits
            if credits is not None and credits < records:
                raise _Reject(427, "Insufficient credits to process this request")
            if credits is not None:
                self.faults.credits = credits - records
            self.credits_used += records

    def _single(self, body: dict[str, Any]) -> tuple[int, bytes]:
        company = body.get("company")
        if not isinstance(company, dict) or not str(company.get("name") or "").strip():
            raise _Reject(400, "Insufficient basic input: account enrichment needs company.name")
        self._charge(1)
        return 200, orjson.dumps(self.answer(body))

    def _bulk(self, body: dict[str, Any]) -> tuple[int, bytes]:
        records = body.get("data")
        if not isinstance(records, list) or not records:
            raise _Reject(400, "Insufficient basic input: 'data' must list the records")
        if len(records) > BULK_LIMIT:
            raise _Reject(400, f"A bulk request holds at most {BULK_LIMIT} records")
        self._charge(len(records))
        bulk_id = str(uuid.uuid4())
        with self._lock:
            self._jobs[bulk_id] = _Job([self.answer(r) for r in records])
        return 202, orjson.dumps({"id": f"/v3/enrichment/results/{bulk_id}"})

    def _results(self, bulk_id: str) -> tuple[int, bytes]:
        with self._lock:
            job = self._jobs.get(bulk_id)
            if job is None:
                raise _Reject(404, "The results are not found")
            job.polls += 1
            if job.polls <= self.faults.processing_polls:
                return 204, b""
        return 200, orjson.dumps({"results": job.results})

    @staticmethod
    def _error(error: str) -> bytes:
        return orjson.dumps({
            "error": error, "tracking_id": uuid.uuid4().hex,
            "request_timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "details": error,
        })


def _confidence(company: Company, by_name: bool, website: str, address: Any) -> str:
    """HIGH / MEDIUM / LOW / VERY LOW from the evidence sent.

    Points: the normalised name found the company 2; the website agrees (same registered
    site) 2, contradicts -1; the location agrees (its city or country is the company's, and
    no country contradicts) 1, contradicts -1. 4+ HIGH, 3 MEDIUM, 2 LOW, less VERY LOW. So a
    name alone is LOW, name + location MEDIUM, name + website HIGH; a website alone (the name
    did not match) LOW, with the location MEDIUM."""
    points = 2 if by_name else 0
    if website:
        points += 2 if _same_site(website, company.domain) else -1
    if isinstance(address, dict) and any(address.get(k) for k in ("city", "state", "country")):
        hq = company.answer.get("address") or {}
        city_ok = bool(address.get("city")) and str(address["city"]).strip().lower() == str(
            hq.get("city") or "").lower()
        country_given = bool(address.get("country"))
        country_ok = country_given and _country(str(address["country"])) == _country(
            str(hq.get("country") or ""))
        if (city_ok or country_ok) and not (country_given and not country_ok):
            points += 1
        else:
            points -= 1
    if points >= 4:
        return "HIGH"
    if points == 3:
        return "MEDIUM"
    if points == 2:
        return "LOW"
    return "VERY LOW"


class _Handler(EmulatorHandler):
    server_version = "apigw"


LeadspaceEmulator.handler = _Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.emulators.leadspace",
                                     description="Serve the synthetic companies as Leadspace.")
    parser.add_argument("--data", required=True, type=Path, help="the generator's output dir")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--key", default=DEMO_KEY, help="the perpetual key it accepts")
    parser.add_argument("--processing-polls", type=int, default=1,
                        help="polls answered 204 before a bulk job's results")
    args = parser.parse_args(argv)
    if not (args.data / "crm" / "accounts.csv").exists():
        print(f"error: {args.data} holds no synthetic organisation "
              "(run python -m devtools.synthetic --out DIR first)", file=sys.stderr)
        return 2
    emulator = LeadspaceEmulator(args.data, host=args.host, port=args.port, key=args.key)
    emulator.faults.processing_polls = args.processing_polls
    emulator.start()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"LEADSPACE_API_URL={emulator.url}", flush=True)
    while not stop.wait(0.5):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
