"""Synthetic organisation: CRM accounts and contacts, org users and groups, a year of mail and
meetings, written as the files the bundled Graph emulator serves.

`python -m devtools.synthetic --out DIR [--seed 42] [--mailboxes 20] [--accounts 150]
[--messages-per-mailbox 1500] [--as-of YYYY-MM-DD]`

Everything is drawn from one `random.Random(seed)`: the same arguments give byte-identical
files. The layout of DIR:

- `crm/accounts.csv`, `crm/contacts.csv`
- `graph/users.json`, `graph/groups.json` (`members` lists direct member ids)
- `graph/mailboxes/<user_id>/folders.json` (mailFolder objects plus a private `_wellKnownName`)
- `graph/mailboxes/<user_id>/messages.ndjson` (full Graph v1.0 messages, one per line)
- `graph/mailboxes/<user_id>/events.ndjson` (calendarView items plus the series masters)
- `manifest.json` (arguments, window, counts, emulator credentials, facts for tests)
"""

from __future__ import annotations

import argparse
import base64
import csv
import math
import random
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import orjson

from loaders.settings import window_days

ORG_DOMAIN = "contoso.com"
TENANT_ID = "c0a70505-7e4a-4e1d-9d1c-c0a70505c0de"
CLIENT_ID = "demo-client-id"
CLIENT_SECRET = "demo-client-secret"
SALES_GROUP = f"sales@{ORG_DOMAIN}"
EMEA_GROUP = f"sales-emea@{ORG_DOMAIN}"
APAC_GROUP = f"sales-apac@{ORG_DOMAIN}"
ALL_GROUP = f"all-staff@{ORG_DOMAIN}"
WINDOW_DAYS = window_days()  # the loaders' and the models' window (dbt_project.yml)

FIRST_NAMES = [
    "Ann", "Ben", "Chloe", "David", "Emma", "Felix", "Grace", "Hugo", "Isla", "Jack", "Kara",
    "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera",
    "Will", "Xenia", "Yusuf", "Zoe", "Aisha", "Bruno", "Carla", "Dmitri", "Elena", "Farid",
    "Greta", "Hiro", "Ines", "Jonas", "Keiko", "Lars", "Mei", "Nils",
]
LAST_NAMES = [
    "Lee", "Smith", "Garcia", "Müller", "Rossi", "Dubois", "Kim", "Nowak", "Silva", "Jensen",
    "Brown", "Tanaka", "Khan", "Novak", "Costa", "Weber", "Moreau", "Ivanova", "Hughes",
    "Schmidt", "Lopez", "Meyer", "Fischer", "Walsh", "Okafor", "Berg", "Laine", "Horvat",
    "Patel", "Sato", "Wright", "Young", "Baker", "Clarke", "Evans", "Fox", "Green", "Hall",
]
NAME_A = [
    "Acme", "Globex", "Initech", "Umbra", "Hooli", "Vandel", "Stark", "Wayne", "Wonka",
    "Soylent", "Tyrell", "Cyber", "Oscorp", "Aperture", "Massive", "Nakatomi", "Monarch",
    "Virtu", "Zenith", "Apex", "Nova", "Bluefin", "Redwood", "Silverline", "Golden", "Northwind",
    "Quantum", "Pioneer", "Summit", "Vertex", "Orbit", "Atlas", "Helix", "Crest", "Fabrikam",
    "Echo", "Fusion", "Granite", "Harbor", "Tailspin",
]
NAME_B = [
    "", "Tech", "Labs", "Works", "Systems", "Logistics", "Foods", "Energy", "Bank", "Media",
    "Health", "Retail", "Motors", "Analytics", "Pharma", "Solutions", "Partners", "Dynamics",
    "Networks", "Capital",
]
INDUSTRIES = [
    "Manufacturing", "Financial Services", "Retail", "Healthcare", "Software", "Logistics",
    "Energy", "Media", "Public Sector", "Education",
]
# country, cities, top-level suffix, Windows time zone, legal suffix
COUNTRIES: list[tuple[str, list[str], str, str, str]] = [
    ("United Kingdom", ["London", "Manchester", "Leeds"], "co.uk", "GMT Standard Time", "Ltd"),
    ("Germany", ["Berlin", "Munich", "Hamburg"], "de", "W. Europe Standard Time", "GmbH"),
    ("United States", ["Seattle", "San Francisco"], "com", "Pacific Standard Time", "Inc."),
    ("United States", ["New York", "Boston"], "com", "Eastern Standard Time", "Inc."),
    ("France", ["Paris", "Lyon"], "fr", "Romance Standard Time", "SAS"),
    ("Netherlands", ["Amsterdam", "Utrecht"], "nl", "W. Europe Standard Time", "B.V."),
    ("Australia", ["Sydney", "Melbourne"], "com.au", "AUS Eastern Standard Time", "Pty Ltd"),
    ("Japan", ["Tokyo", "Osaka"], "co.jp", "Tokyo Standard Time", "K.K."),
]
ORG_ZONES = [
    "Pacific Standard Time", "Eastern Standard Time", "GMT Standard Time",
    "W. Europe Standard Time", "UTC",
]
FREE_MAIL = ["gmail.com", "outlook.com", "yahoo.com", "hotmail.com"]
NEWSLETTERS = [
    ("Some Vendor News", "news@some-vendor.com"),
    ("SaaS Weekly", "newsletter@saasweekly.io"),
    ("Events Platform", "noreply@eventsplatform.net"),
    ("Market Pulse", "digest@marketpulse-news.com"),
    ("Cloud Tools", "updates@cloudtools.dev"),
]
TOPICS = [
    "Quarterly review", "Pricing proposal", "Renewal", "Onboarding plan", "Support escalation",
    "Contract draft", "Product roadmap", "Invoice question", "Workshop follow-up", "Pilot scope",
    "Security questionnaire", "Reference call", "Budget planning", "Kick-off",
]
INTERNAL_TOPICS = [
    "Pipeline update", "Team offsite", "Forecast", "Expense report", "Hiring plan",
    "Territory planning", "Weekly notes", "Lunch?", "Deal desk", "Enablement session",
]
LOREM = (
    "Thanks for the quick turnaround. As discussed, please find the details below and let me "
    "know if anything is missing before we move on to the next step."
)
ROOMS = [("Room Berlin 4.01", "room-berlin-401"), ("Room Seattle Lake", "room-sea-lake")]

Addr = tuple[str, str]  # (display name, address)


@dataclass
class OrgUser:
    id: str
    display: str
    mail: str
    upn: str
    tz: str
    selected: bool
    folders: dict[str, str] = field(default_factory=dict)

    @property
    def addr(self) -> Addr:
        return (self.display, self.mail)


@dataclass
class Contact:
    contact_id: str
    account_id: str
    first: str
    last: str
    email_csv: str  # as written to the CRM file (maybe spaces, mixed case)
    address: str  # as it appears on mail

    @property
    def addr(self) -> Addr:
        return (f"{self.first} {self.last}", self.address)


@dataclass
class Account:
    account_id: str
    name: str
    website: str
    city: str
    country: str
    industry: str
    domain: str  # the company's mail domain (registered domain)
    tz: str
    active: bool = True
    contacts: list[Contact] = field(default_factory=list)


@dataclass
class Conversation:
    id: str
    index: bytes
    subject: str
    replies: int = 0


def _fmt(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _fmt7(dt: datetime) -> str:
    """Graph's 7-digit fractional format (event times, event metadata)."""
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


def _stamp(dt: datetime) -> str:
    """Graph's event metadata timestamps: 7 fractional digits, UTC, trailing Z."""
    return _fmt7(dt) + "Z"


def _ea(addr: Addr) -> dict[str, Any]:
    return {"emailAddress": {"name": addr[0], "address": addr[1]}}


def _ascii(text: str) -> str:
    return text.replace("ü", "ue").replace("ö", "oe").replace("ä", "ae")


class _Generator:
    def __init__(self, seed: int, mailboxes: int, accounts: int, per_mailbox: int, as_of: date):
        if mailboxes < 2:
            raise ValueError("--mailboxes must be at least 2")
        self.rng = random.Random(seed)
        self.seed = seed
        self.n_mailboxes = mailboxes
        self.n_accounts = max(accounts, 10)
        self.per_mailbox = per_mailbox
        self.as_of = as_of
        self.window_end = datetime.combine(as_of, time(23, 59, 59), UTC)
        self.window_start = datetime.combine(as_of - timedelta(days=WINDOW_DAYS - 1), time(), UTC)
        self.users: list[OrgUser] = []
        self.user_by_addr: dict[str, OrgUser] = {}
        self.groups: list[dict[str, Any]] = []
        self.accounts: list[Account] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.folders: dict[str, list[dict[str, Any]]] = {}
        self.facts: dict[str, Any] = {}

    # ---------------------------------------------------------------- ids
    def guid(self) -> str:
        return str(uuid.UUID(bytes=self.rng.randbytes(16), version=4))

    def graph_id(self, prefix: str = "AAMkAG", nbytes: int = 39) -> str:
        return prefix + base64.urlsafe_b64encode(self.rng.randbytes(nbytes)).decode()

    def change_key(self) -> str:
        return base64.b64encode(self.rng.randbytes(15)).decode()

    # ---------------------------------------------------------------- people
    @property
    def selected(self) -> list[OrgUser]:
        return [u for u in self.users if u.selected]

    def build_users(self) -> None:
        n_total = self.n_mailboxes + max(4, self.n_mailboxes // 3)
        seen: set[str] = set()
        for i in range(n_total):
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            local = f"{first}.{_ascii(last)}"
            n = 2
            while local.lower() in seen:
                local = f"{first}.{_ascii(last)}{n}"
                n += 1
            seen.add(local.lower())
            mail = f"{local}@{ORG_DOMAIN}"
            shape = i % 3
            if shape == 0:
                upn = f"{first[0]}{_ascii(last)}{n - 2 or ''}".lower() + f"@{ORG_DOMAIN}"
            elif shape == 1:
                upn = mail.lower()
            else:
                upn = mail
            user = OrgUser(
                id=self.guid(), display=f"{first} {last}", mail=mail, upn=upn,
                tz=self.rng.choice(ORG_ZONES), selected=i < self.n_mailboxes,
            )
            self.users.append(user)
            self.user_by_addr[mail.lower()] = user
            self.user_by_addr[upn.lower()] = user

    def build_groups(self) -> None:
        sel = self.selected
        n = len(sel)
        a, b = math.ceil(n * 0.5), math.ceil(n * 0.8)
        direct, emea, apac = sel[:a], sel[a:b], sel[b:]
        apac_group = None
        if apac:
            apac_group = self._group("Sales APAC", APAC_GROUP, [u.id for u in apac])
        emea_members = [u.id for u in emea] + [direct[0].id]  # also a direct member: dedup
        if apac_group:
            emea_members.append(apac_group["id"])
        emea_group = self._group("Sales EMEA", EMEA_GROUP, emea_members)
        sales = self._group("Sales", SALES_GROUP, [u.id for u in direct] + [emea_group["id"]])
        everyone = self._group("All staff", ALL_GROUP, [u.id for u in self.users])
        self.groups = [sales, emea_group] + ([apac_group] if apac_group else []) + [everyone]

    def _group(self, name: str, mail: str, members: list[str]) -> dict[str, Any]:
        return {
            "id": self.guid(), "displayName": name, "description": f"{name} team",
            "mail": mail, "mailNickname": mail.split("@")[0], "mailEnabled": True,
            "securityEnabled": True, "groupTypes": [], "visibility": None,
            "createdDateTime": "2021-04-01T08:00:00Z", "members": members,
        }

    # ---------------------------------------------------------------- CRM
    def build_accounts(self) -> None:
        names: list[tuple[str, str]] = [(x, y) for x in NAME_A for y in NAME_B]
        self.rng.shuffle(names)
        n_pairs = max(2, self.n_accounts // 40)
        n_parent = self.n_accounts - n_pairs
        shapes = ["https://www.{d}/about", "http://{d}", "{d}", "https://{d}/", "www.{d}",
                  "HTTPS://WWW.{D}", "https://www.{d}"]
        for i in range(n_parent):
            a, b = names[i % len(names)]
            stem = f"{a}{b}" + (str(i // len(names)) if i >= len(names) else "")
            country, cities, tld, tz, suffix = self.rng.choice(COUNTRIES)
            domain = f"{stem.lower()}.{tld}"
            website = "" if self.rng.random() < 0.05 else self.rng.choice(shapes)
            website = website.replace("{d}", domain).replace("{D}", domain.upper())
            name = f"{a} {b}".strip() + (f" {i // len(names)}" if i >= len(names) else "")
            self.accounts.append(Account(
                account_id=f"ACC-{i + 1:05d}", name=f"{name} {suffix}", website=website,
                city=self.rng.choice(cities), country=country,
                industry=self.rng.choice(INDUSTRIES), domain=domain, tz=tz,
            ))
        with_site = [acc for acc in self.accounts if acc.website]
        parents = self.rng.sample(with_site, n_pairs)
        shared = []
        for j, parent in enumerate(parents):
            site = f"https://{self.rng.choice(['uk', 'de', 'shop', 'eu'])}.{parent.domain}/"
            self.accounts.append(Account(
                account_id=f"ACC-{n_parent + j + 1:05d}", name=f"{parent.name} (Subsidiary)",
                website=site, city=parent.city, country=parent.country,
                industry=parent.industry, domain=parent.domain, tz=parent.tz,
            ))
            shared.append(parent.domain)
        candidates = [acc for acc in self.accounts[:n_parent] if acc not in parents]
        inactive = self.rng.sample(candidates, max(2, self.n_accounts // 16))
        for acc in inactive:
            acc.active = False
        self.facts["shared_domains"] = sorted(shared)
        self.facts["inactive_account_ids"] = sorted(acc.account_id for acc in inactive)

    def build_contacts(self) -> None:
        n = 0
        free = []
        for acc in self.accounts:
            for _ in range(self.rng.randint(1, 5)):
                n += 1
                first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
                local = f"{first}.{_ascii(last)}".lower()
                domain = acc.domain
                roll = self.rng.random()
                if roll < 0.05:
                    domain = self.rng.choice(FREE_MAIL)
                    local = f"{first}{_ascii(last)}{self.rng.randint(1, 99)}".lower()
                address = f"{local}@{domain}"
                if any(address == c.address.lower() for c in acc.contacts):
                    continue
                if 0.05 <= roll < 0.17:  # mixed case in the CRM and on mail
                    address = f"{first}.{_ascii(last)}@{domain.capitalize()}"
                email_csv = f"  {address} " if 0.17 <= roll < 0.22 else address
                contact = Contact(f"CON-{n:06d}", acc.account_id, first, last, email_csv, address)
                if domain in FREE_MAIL:
                    free.append(contact.address)
                acc.contacts.append(contact)
        self.facts["free_mail_contacts"] = free

    # ---------------------------------------------------------------- folders
    def build_folders(self) -> None:
        plan = [
            ("Inbox", "inbox", "root"), ("Drafts", "drafts", "root"),
            ("Sent Items", "sentitems", "root"), ("Deleted Items", "deleteditems", "root"),
            ("Archive", "archive", "root"), ("Junk Email", "junkemail", "root"),
            ("Outbox", "outbox", "root"), ("Conversation History", "conversationhistory", "root"),
            ("Sync Issues", "syncissues", "root"), ("Customers", "customers", "inbox"),
            ("Key accounts", "keyaccounts", "customers"),
        ]
        for user in self.selected:
            ids = {key: self.graph_id("AAMkAGI", 30) for key in ("root", "root_parent")}
            for _, key, _parent in plan:
                ids[key] = self.graph_id("AAMkAGI", 30)
            user.folders = ids
            folders = [self._folder(ids["root"], "Top of Information Store", ids["root_parent"],
                                    "msgfolderroot")]
            for name, key, parent in plan:
                wkn = key if key not in ("customers", "keyaccounts") else None
                folders.append(self._folder(ids[key], name, ids[parent], wkn,
                                            hidden=key == "syncissues"))
            self.folders[user.id] = folders

    @staticmethod
    def _folder(fid: str, name: str, parent: str, wkn: str | None,
                hidden: bool = False) -> dict[str, Any]:
        return {
            "id": fid, "displayName": name, "parentFolderId": parent, "childFolderCount": 0,
            "unreadItemCount": 0, "totalItemCount": 0, "sizeInBytes": 0, "isHidden": hidden,
            "_wellKnownName": wkn,
        }

    def finish_folders(self) -> None:
        for user_id, folders in self.folders.items():
            by_id = {f["id"]: f for f in folders}
            for f in folders:
                if f["parentFolderId"] in by_id:
                    by_id[f["parentFolderId"]]["childFolderCount"] += 1
            for msg in self.messages[user_id]:
                folder = by_id[msg["parentFolderId"]]
                folder["totalItemCount"] += 1
                folder["unreadItemCount"] += 0 if msg["isRead"] else 1
                folder["sizeInBytes"] += 2048

    # ---------------------------------------------------------------- time
    def random_time(self) -> datetime:
        if self.rng.random() < 0.01:  # a few just outside the window, older
            day = self.window_start - timedelta(days=self.rng.randint(1, 60))
        else:
            day = self.window_start + timedelta(days=self.rng.randrange(WINDOW_DAYS))
            if day.weekday() >= 5 and self.rng.random() < 0.8:
                day -= timedelta(days=day.weekday() - 4)
        return day + timedelta(seconds=self.rng.randint(7 * 3600, 18 * 3600))

    # ---------------------------------------------------------------- mail
    def pick_account(self) -> Account:
        return self.rng.choices(self._active, weights=self._weights)[0]

    def external_addr(self, acc: Account) -> Addr:
        """A contact's address; now and then someone on the domain the CRM does not know."""
        if acc.website and self.rng.random() < 0.08:
            first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
            return (f"{first} {last}", f"{first[0]}{_ascii(last)}@{acc.domain}".lower())
        contact = self.rng.choice(acc.contacts)
        name, address = contact.addr
        if self.rng.random() < 0.1:  # mixed case as another client would write it
            local, _, domain = address.partition("@")
            address = f"{local.title()}@{domain.upper()}"
        return (name, address)

    def org_addr(self, user: OrgUser) -> Addr:
        roll = self.rng.random()
        if roll < 0.1:
            return (user.display, user.upn)
        if roll < 0.2:
            return (user.display, user.mail.lower())
        return user.addr

    def colleague(self, exclude: OrgUser | None = None) -> OrgUser:
        while True:
            user = self.rng.choice(self.users)
            if user is not exclude:
                return user

    def new_conversation(self, subject: str) -> Conversation:
        return Conversation(self.graph_id("AAQkAG", 33), self.rng.randbytes(22), subject)

    def send(self, when: datetime, sender: Addr, to: list[Addr], cc: list[Addr] | None = None,
             bcc: list[Addr] | None = None, conv: Conversation | None = None,
             external: bool = False, subject: str | None = None) -> int:
        """Deliver one message: a Sent Items copy for a selected sender, an Inbox-ish copy for
        each selected recipient. Returns the number of mailbox copies written."""
        cc, bcc = cc or [], bcc or []
        conv = conv or self.new_conversation(subject or self.rng.choice(TOPICS))
        prefix = "RE: " if conv.replies else ""
        conv.replies += 1
        index = conv.index + self.rng.randbytes(5) * (conv.replies > 1)
        sender_domain = sender[1].split("@")[-1].lower()
        base = {
            "@odata.type": "#microsoft.graph.message",
            "categories": [],
            "receivedDateTime": None,
            "sentDateTime": _fmt(when),
            "hasAttachments": self.rng.random() < 0.15,
            "internetMessageId": f"<{self.rng.randbytes(12).hex().upper()}@{sender_domain}>",
            "subject": prefix + conv.subject,
            "bodyPreview": LOREM[:120],
            "importance": "high" if self.rng.random() < 0.05 else "normal",
            "conversationId": conv.id,
            "conversationIndex": base64.b64encode(index).decode(),
            "isDeliveryReceiptRequested": False,
            "isReadReceiptRequested": False,
            "isDraft": False,
            "inferenceClassification": "focused",
            "body": {"contentType": "html",
                     "content": f"<html><body><p>{LOREM}</p></body></html>"},
            "uniqueBody": {"contentType": "html", "content": f"<p>{LOREM[:80]}</p>"},
            "sender": _ea(sender),
            "from": _ea(sender),
            "toRecipients": [_ea(a) for a in to],
            "ccRecipients": [_ea(a) for a in cc],
            "bccRecipients": [],
            "replyTo": [],
            "flag": {"flagStatus": "notFlagged"},
        }
        copies = 0
        sender_user = self.user_by_addr.get(sender[1].lower())
        if sender_user and sender_user.selected:
            folder = "sentitems" if self.rng.random() < 0.95 else "deleteditems"
            msg = self._copy(base, sender_user, folder, when, read=True)
            msg["bccRecipients"] = [_ea(a) for a in bcc]
            copies += 1
        seen = {sender_user.id} if sender_user else set()
        for addr in to + cc + bcc:
            user = self.user_by_addr.get(addr[1].lower())
            if user is None or not user.selected or user.id in seen:
                continue
            seen.add(user.id)
            received = when + timedelta(seconds=self.rng.randint(1, 90))
            self._copy(base, user, self._inbox_folder(external), received,
                       read=self.rng.random() < 0.85)
            copies += 1
        return copies

    def _inbox_folder(self, external: bool) -> str:
        roll = self.rng.random()
        if external:
            folders = [(0.68, "inbox"), (0.83, "customers"), (0.88, "keyaccounts"),
                       (0.93, "archive"), (0.97, "deleteditems"), (1.0, "junkemail")]
        else:
            folders = [(0.85, "inbox"), (0.95, "archive"), (1.0, "deleteditems")]
        return next(name for limit, name in folders if roll < limit)

    def _copy(self, base: dict[str, Any], user: OrgUser, folder: str, received: datetime,
              read: bool) -> dict[str, Any]:
        msg = dict(base)
        modified = received + timedelta(seconds=self.rng.randint(0, 600))
        msg.update({
            "id": self.graph_id(),
            "createdDateTime": _fmt(received),
            "lastModifiedDateTime": _fmt(modified),
            "changeKey": self.change_key(),
            "receivedDateTime": _fmt(received),
            "parentFolderId": user.folders[folder],
            "isRead": read,
            "webLink": f"https://outlook.office365.com/owa/?ItemID={self.rng.randbytes(6).hex()}",
        })
        self.messages[user.id].append(msg)
        return msg

    def mail_account_thread(self, user: OrgUser) -> int:
        acc = self.pick_account()
        other = self.external_addr(acc)
        me = self.org_addr(user)
        cc = [self.org_addr(self.colleague(user))] if self.rng.random() < 0.25 else []
        conv = self.new_conversation(f"{self.rng.choice(TOPICS)} – {acc.name}")
        outbound = self.rng.random() < 0.5
        n = 1 + min(3, int(self.rng.expovariate(1.0)))
        when = self.random_time()
        copies = 0
        for _ in range(n):
            if when > self.window_end:
                break
            if outbound:
                bcc = [self.org_addr(self.colleague(user))] if self.rng.random() < 0.1 else []
                copies += self.send(when, me, [other], cc, bcc, conv=conv, external=True)
            else:
                copies += self.send(when, other, [me], cc, conv=conv, external=True)
            outbound = not outbound
            when += timedelta(minutes=self.rng.randint(20, 30 * 60))
        return copies

    def mail_two_accounts(self, user: OrgUser) -> int:
        first, second = self.pick_account(), self.pick_account()
        to = [self.external_addr(first), self.external_addr(second)]
        return self.send(self.random_time(), self.org_addr(user), to, external=True,
                         subject="Joint workshop invitation")

    def mail_internal(self, user: OrgUser) -> int:
        others = [self.org_addr(self.colleague(user)) for _ in range(self.rng.randint(1, 4))]
        conv = self.new_conversation(self.rng.choice(INTERNAL_TOPICS))
        when = self.random_time()
        if self.rng.random() < 0.3:  # a colleague writes to this user
            copies = self.send(when, others[0], [self.org_addr(user)] + others[1:], conv=conv)
        else:
            copies = self.send(when, self.org_addr(user), others, conv=conv)
        if self.rng.random() < 0.3 and when + timedelta(hours=3) < self.window_end:
            reply_to = [self.org_addr(user)]
            copies += self.send(when + timedelta(hours=self.rng.uniform(0.2, 3)), others[0],
                                reply_to, conv=conv)
        return copies

    def mail_newsletter(self, user: OrgUser) -> int:
        vendor = self.rng.choice(NEWSLETTERS)
        return self.send(self.random_time(), vendor, [self.org_addr(user)],
                         subject=f"{vendor[0]}: this week", external=True)

    def mail_freemail_stranger(self, user: OrgUser) -> int:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        sender = (f"{first} {last}", f"{first}{_ascii(last)}@{self.rng.choice(FREE_MAIL)}")
        return self.send(self.random_time(), sender, [self.org_addr(user)], external=True,
                         subject="Question about your product")

    def mail_draft(self, user: OrgUser) -> int:
        acc = self.pick_account()
        when = self.random_time()
        before = len(self.messages[user.id])
        self.send(when, user.addr, [self.external_addr(acc)], external=True,
                  subject=f"Draft: proposal for {acc.name}")
        del self.messages[user.id][before:]  # the Sent Items copy becomes a draft instead
        conv = self.new_conversation(f"Proposal for {acc.name}")
        base = {
            "@odata.type": "#microsoft.graph.message", "categories": [],
            "sentDateTime": _fmt(when), "hasAttachments": False,
            "internetMessageId": f"<{self.rng.randbytes(12).hex().upper()}@{ORG_DOMAIN}>",
            "subject": conv.subject, "bodyPreview": LOREM[:60], "importance": "normal",
            "conversationId": conv.id,
            "conversationIndex": base64.b64encode(conv.index).decode(),
            "isDeliveryReceiptRequested": False, "isReadReceiptRequested": False,
            "isDraft": True, "inferenceClassification": "focused",
            "body": {"contentType": "html", "content": f"<p>{LOREM[:60]}</p>"},
            "uniqueBody": {"contentType": "html", "content": f"<p>{LOREM[:60]}</p>"},
            "sender": _ea(user.addr), "from": _ea(user.addr),
            "toRecipients": [_ea(self.external_addr(acc))], "ccRecipients": [],
            "bccRecipients": [], "replyTo": [], "flag": {"flagStatus": "notFlagged"},
        }
        self._copy(base, user, "drafts", when, read=True)
        return 1

    def build_messages(self) -> None:
        self._active = [acc for acc in self.accounts if acc.active]
        self._weights = [1 / (rank + 1) ** 0.7 for rank in range(len(self._active))]
        for user in self.selected:
            self.messages[user.id] = []
        kinds = [
            (self.mail_internal, 36), (self.mail_newsletter, 20), (self.mail_account_thread, 36),
            (self.mail_two_accounts, 1), (self.mail_freemail_stranger, 2), (self.mail_draft, 2),
        ]
        handlers, weights = zip(*kinds, strict=True)
        sel = self.selected
        target = len(sel) * self.per_mailbox
        copies, i = 0, 0
        while copies < target:
            copies += self.rng.choices(handlers, weights)[0](sel[i % len(sel)])
            i += 1
        self._break_some_messages()
        for msgs in self.messages.values():
            msgs.sort(key=lambda m: (m["receivedDateTime"], m["id"]))

    def _break_some_messages(self) -> None:
        """Malformed records, as real mailboxes hold: no `from`, `toRecipients: null`."""
        broken = 0
        for k, user in enumerate(self.selected):
            inbox = [m for m in self.messages[user.id] if not m["isDraft"]
                     and m["parentFolderId"] == user.folders["inbox"]]
            if not inbox or (k % 3 and len(inbox) < 500):
                continue
            for j, msg in enumerate(self.rng.sample(inbox, min(len(inbox), 2))):
                if j == 0:
                    del msg["from"]
                else:
                    msg["toRecipients"] = None
                broken += 1
        self.facts["malformed_messages"] = broken

    # ---------------------------------------------------------------- calendar
    def build_events(self) -> None:
        for user in self.selected:
            self.events[user.id] = []
        self._series_count = 0
        sel = self.selected
        for t in range(0, len(sel), 5):
            team = sel[t:t + 5]
            attendees = [(self.org_addr(u), "required") for u in team[1:]]
            if t == 0:
                attendees.append(((ROOMS[0][0], f"{ROOMS[0][1]}@{ORG_DOMAIN}"), "resource"))
            self.series(team[0].addr, team[0].tz, attendees, "Team stand-up", weeks=1,
                        minutes=30, hour=9.5)
        for _ in range(max(1, len(sel) // 5)):
            owner = self.rng.choice(sel)
            acc = self.pick_account()
            attendees = [(self.external_addr(acc), "required"),
                         (self.org_addr(self.colleague(owner)), "optional")]
            self.series(owner.addr, owner.tz, attendees, f"Monthly check-in – {acc.name}",
                        weeks=4, minutes=60, hour=14)
        first_monday = self.window_start - timedelta(days=self.window_start.weekday() + 14)
        n_weeks = (WINDOW_DAYS + 14 + 35) // 7
        per_week = max(2, round(len(sel) * 3))
        for w in range(n_weeks):
            monday = (first_monday + timedelta(weeks=w)).date()
            for _ in range(per_week):
                self.one_off(monday + timedelta(days=self.rng.randrange(5)))
        for evs in self.events.values():
            evs.sort(key=lambda e: (e["start"]["dateTime"], e["id"]))

    def _attendee(self, addr: Addr, kind: str, org: bool, created: datetime) -> dict[str, Any]:
        roll = self.rng.random()
        if kind == "resource":
            response = "accepted"
        elif org:
            response = ("accepted" if roll < 0.7 else "tentativelyAccepted" if roll < 0.8
                        else "declined" if roll < 0.9 else "none")
        else:
            response = "accepted" if roll < 0.6 else "declined" if roll < 0.7 else "none"
        when = ("0001-01-01T00:00:00Z" if response == "none"
                else _fmt(created + timedelta(hours=self.rng.randint(1, 30))))
        return {"type": kind, "status": {"response": response, "time": when},
                "emailAddress": {"name": addr[0], "address": addr[1]}}

    def one_off(self, day: date) -> None:
        user = self.rng.choice(self.selected)
        roll = self.rng.random()
        cancelled = self.rng.random() < 0.04
        all_day = False
        if roll < 0.36:  # internal
            organizer, tz = self.org_addr(user), user.tz
            people = [(self.org_addr(self.colleague(user)), "required")
                      for _ in range(self.rng.randint(1, 3))]
            subject = self.rng.choice(INTERNAL_TOPICS)
        elif roll < 0.68:  # org user invites an account
            acc = self.pick_account()
            organizer, tz = self.org_addr(user), user.tz
            people = [(self.external_addr(acc), "required") for _ in range(self.rng.randint(1, 3))]
            if self.rng.random() < 0.4:
                people.append((self.org_addr(self.colleague(user)), "optional"))
            subject = f"{self.rng.choice(TOPICS)} – {acc.name}"
        elif roll < 0.86:  # an account contact invites the org
            acc = self.pick_account()
            organizer, tz = self.external_addr(acc), acc.tz
            people = [(self.org_addr(user), "required")]
            if self.rng.random() < 0.5:
                people.append((self.org_addr(self.colleague(user)), "required"))
            if self.rng.random() < 0.3:
                people.append((self.external_addr(acc), "optional"))
            subject = f"{acc.name}: {self.rng.choice(TOPICS)}"
        elif roll < 0.93:  # a block with no attendees
            organizer, tz, people, subject = user.addr, user.tz, [], "Focus time"
            cancelled = False
        else:  # all day
            organizer, tz, people = user.addr, user.tz, []
            all_day, cancelled = True, False
            subject = self.rng.choice(["Out of office", "Trade show", "Public holiday"])
            if self.rng.random() < 0.5:
                acc = self.pick_account()
                people = [(self.external_addr(acc), "required")]
                subject = f"On site at {acc.name}"
        if all_day:
            start = datetime.combine(day, time())
            minutes = 24 * 60
        else:
            start = datetime.combine(day, time(8)) + timedelta(minutes=30 * self.rng.randrange(18))
            minutes = self.rng.choice([30, 30, 45, 60, 60, 90])
        self.meeting(organizer, tz, people, subject, start, minutes, all_day, cancelled)

    def meeting(self, organizer: Addr, tz: str, people: list[tuple[Addr, str]], subject: str,
                start: datetime, minutes: int, all_day: bool = False, cancelled: bool = False,
                ical: str | None = None, occurrence: dict[str, Any] | None = None) -> None:
        """One meeting (or one occurrence of a series) in every selected participant's
        calendar. `occurrence` carries {masters: {user_id: master id}, type}."""
        created = min(start.replace(tzinfo=UTC), self.window_end) - timedelta(
            days=self.rng.randint(1, 20), seconds=self.rng.randint(0, 86400))
        attendees = [self._attendee(a, kind, a[1].lower() in self.user_by_addr, created)
                     for a, kind in people]
        ical = ical or self._ical(start.date(), None)
        common = {
            "@odata.type": "#microsoft.graph.event",
            "createdDateTime": _stamp(created),
            "categories": [],
            "originalStartTimeZone": tz,
            "originalEndTimeZone": tz,
            "iCalUId": ical,
            "reminderMinutesBeforeStart": 15,
            "isReminderOn": not all_day,
            "hasAttachments": False,
            "subject": ("Canceled: " if cancelled else "") + subject,
            "bodyPreview": LOREM[:90],
            "importance": "normal",
            "sensitivity": "normal",
            "isAllDay": all_day,
            "isCancelled": cancelled,
            "responseRequested": True,
            "seriesMasterId": None,
            "showAs": "oof" if all_day and subject == "Out of office" else (
                "free" if all_day else "busy"),
            "type": occurrence["type"] if occurrence else "singleInstance",
            "isOnlineMeeting": bool(people),
            "onlineMeetingProvider": "teamsForBusiness" if people else "unknown",
            "body": {"contentType": "html", "content": f"<html><body>{LOREM}</body></html>"},
            "start": {"dateTime": _fmt7(start), "timeZone": tz},
            "end": {"dateTime": _fmt7(start + timedelta(minutes=minutes)), "timeZone": tz},
            "location": {"displayName": "Microsoft Teams Meeting" if people else "",
                         "locationType": "default"},
            "recurrence": None,
            "attendees": attendees,
            "organizer": _ea(organizer),
        }
        org_user = self.user_by_addr.get(organizer[1].lower())
        holders: list[tuple[OrgUser, str]] = []
        seen: set[str] = set()
        if org_user and org_user.selected and not cancelled:
            holders.append((org_user, "organizer"))
            seen.add(org_user.id)
        for att in attendees:
            user = self.user_by_addr.get(att["emailAddress"]["address"].lower())
            response = att["status"]["response"]
            # Outlook removes a declined meeting from the decliner's calendar.
            if user and user.selected and user.id not in seen and response != "declined":
                seen.add(user.id)
                holders.append((user, response))
        for user, response in holders:
            ev = dict(common)
            ev.update({
                "id": self.graph_id("AAMkAGE", 45),
                "changeKey": self.change_key(),
                "lastModifiedDateTime": _stamp(
                    created + timedelta(minutes=self.rng.randint(0, 90))),
                "isOrganizer": response == "organizer",
                "responseStatus": {"response": response, "time": common["createdDateTime"]},
            })
            if occurrence:
                ev["seriesMasterId"] = occurrence["masters"][user.id]
            self.events[user.id].append(ev)

    def _ical(self, day: date | None, uid: bytes | None) -> str:
        """Outlook's GOID: class id, the occurrence date (zero for a series/single), uid."""
        stamp = f"{day.year:04X}{day.month:02X}{day.day:02X}" if day else "00000000"
        uid = uid or self.rng.randbytes(16)
        return "040000008200E00074C5B7101A82E008" + stamp + "0000000000000000" + uid.hex().upper()

    def series(self, organizer: Addr, tz: str, people: list[tuple[Addr, str]], subject: str,
               weeks: int, minutes: int, hour: float) -> None:
        self._series_count += 1
        shared_uid = self._series_count % 3 == 0  # "as seen in the wild"
        uid = self.rng.randbytes(16)
        first = self.window_start.date() - timedelta(days=21 + self.rng.randrange(7))
        first += timedelta(days=(self.rng.randrange(5) - first.weekday()) % 7)
        last = self.as_of + timedelta(days=42)
        start = datetime.combine(first, time()) + timedelta(hours=hour)
        master_ical = self._ical(None, uid)
        masters: dict[str, str] = {}
        org_user = self.user_by_addr.get(organizer[1].lower())
        holders = [org_user] if org_user and org_user.selected else []
        holders += [self.user_by_addr[a[1].lower()] for a, _ in people
                    if a[1].lower() in self.user_by_addr
                    and self.user_by_addr[a[1].lower()].selected]
        for user in holders:
            if user.id in masters:
                continue
            masters[user.id] = self.graph_id("AAMkAGE", 45)
            self.events[user.id].append(self._master(
                masters[user.id], master_ical, organizer, tz, people, subject, start, minutes,
                weeks, last, is_organizer=user is org_user))
        self.facts.setdefault("series_shared_icaluid" if shared_uid else "series", []).append(
            master_ical)
        day, k = first, 0
        while day <= last:
            k += 1
            when = datetime.combine(day, start.time())
            kind = "occurrence"
            if k % 17 == 5:  # moved by an hour: an exception
                when += timedelta(hours=1)
                kind = "exception"
            if k % 23 != 11:  # one occurrence deleted now and then: absent from the view
                ical = master_ical if shared_uid else self._ical(day, uid)
                self.meeting(organizer, tz, people, subject, when, minutes, ical=ical,
                             occurrence={"masters": masters, "type": kind})
            day += timedelta(weeks=weeks)

    def _master(self, mid: str, ical: str, organizer: Addr, tz: str,
                people: list[tuple[Addr, str]], subject: str, start: datetime, minutes: int,
                weeks: int, last: date, is_organizer: bool) -> dict[str, Any]:
        created = start.replace(tzinfo=UTC) - timedelta(days=3)
        day_name = start.strftime("%A").lower()
        return {
            "@odata.type": "#microsoft.graph.event", "id": mid, "iCalUId": ical,
            "createdDateTime": _stamp(created), "lastModifiedDateTime": _stamp(created),
            "changeKey": self.change_key(), "type": "seriesMaster", "seriesMasterId": None,
            "subject": subject, "bodyPreview": LOREM[:90],
            "body": {"contentType": "html", "content": f"<p>{LOREM}</p>"},
            "isAllDay": False, "isCancelled": False, "isOrganizer": is_organizer,
            "showAs": "busy", "originalStartTimeZone": tz, "originalEndTimeZone": tz,
            "start": {"dateTime": _fmt7(start), "timeZone": tz},
            "end": {"dateTime": _fmt7(start + timedelta(minutes=minutes)), "timeZone": tz},
            "location": {"displayName": "Microsoft Teams Meeting", "locationType": "default"},
            "recurrence": {
                "pattern": {"type": "weekly", "interval": weeks, "month": 0, "dayOfMonth": 0,
                            "daysOfWeek": [day_name], "firstDayOfWeek": "sunday",
                            "index": "first"},
                "range": {"type": "endDate", "startDate": start.date().isoformat(),
                          "endDate": last.isoformat(), "recurrenceTimeZone": tz,
                          "numberOfOccurrences": 0},
            },
            "attendees": [self._attendee(a, kind, a[1].lower() in self.user_by_addr, created)
                          for a, kind in people],
            "organizer": _ea(organizer),
            "responseStatus": {"response": "organizer" if is_organizer else "accepted",
                               "time": _stamp(created)},
        }

    # ---------------------------------------------------------------- output
    def write(self, out: Path) -> dict[str, Any]:
        (out / "crm").mkdir(parents=True, exist_ok=True)
        (out / "graph" / "mailboxes").mkdir(parents=True, exist_ok=True)
        self._write_crm(out / "crm")
        users = [{
            "businessPhones": [], "displayName": u.display,
            "givenName": u.display.split(" ")[0], "surname": u.display.split(" ", 1)[1],
            "jobTitle": "Account Executive" if u.selected else "Consultant",
            "mail": u.mail, "mobilePhone": None, "officeLocation": None,
            "preferredLanguage": "en-US", "userPrincipalName": u.upn, "id": u.id,
        } for u in self.users]
        _write_json(out / "graph" / "users.json", users)
        _write_json(out / "graph" / "groups.json", self.groups)
        per_mailbox = {}
        for user in self.selected:
            box = out / "graph" / "mailboxes" / user.id
            box.mkdir(parents=True, exist_ok=True)
            _write_json(box / "folders.json", self.folders[user.id])
            _write_ndjson(box / "messages.ndjson", self.messages[user.id])
            _write_ndjson(box / "events.ndjson", self.events[user.id])
            per_mailbox[user.id] = {"mail": user.mail, "messages": len(self.messages[user.id]),
                                    "events": len(self.events[user.id])}
        manifest = self._manifest(per_mailbox)
        _write_json(out / "manifest.json", manifest)
        return manifest

    def _write_crm(self, crm: Path) -> None:
        with (crm / "accounts.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["account_id", "name", "website", "city", "country", "industry"])
            for a in self.accounts:
                writer.writerow([a.account_id, a.name, a.website, a.city, a.country, a.industry])
        with (crm / "contacts.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["contact_id", "account_id", "email", "first_name", "last_name"])
            for a in self.accounts:
                for c in a.contacts:
                    writer.writerow([c.contact_id, c.account_id, c.email_csv, c.first, c.last])

    def _manifest(self, per_mailbox: dict[str, Any]) -> dict[str, Any]:
        n_messages = sum(v["messages"] for v in per_mailbox.values())
        n_events = sum(v["events"] for v in per_mailbox.values())
        return {
            "seed": self.seed,
            "as_of": self.as_of.isoformat(),
            "window": {"start": self.window_start.date().isoformat(),
                       "end": self.as_of.isoformat()},
            "org_domain": ORG_DOMAIN,
            "groups": {"sales": SALES_GROUP, "sales_emea": EMEA_GROUP,
                       "sales_apac": APAC_GROUP, "all_staff": ALL_GROUP},
            "group_address": SALES_GROUP,
            "mailbox_ids": [u.id for u in self.selected],
            "emulator": {"tenant_id": TENANT_ID, "client_id": CLIENT_ID,
                         "client_secret": CLIENT_SECRET},
            "counts": {
                "accounts": len(self.accounts),
                "contacts": sum(len(a.contacts) for a in self.accounts),
                "users": len(self.users), "groups": len(self.groups),
                "mailboxes": len(per_mailbox), "messages": n_messages, "events": n_events,
                "per_mailbox": per_mailbox,
            },
            "facts": self.facts,
        }


def _write_json(path: Path, data: Any) -> None:
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def _write_ndjson(path: Path, records: Iterable[dict[str, Any]]) -> None:
    dumps = orjson.dumps
    with path.open("wb") as fh:
        fh.write(b"".join(dumps(r) + b"\n" for r in records))


def generate(out: Path | str, *, seed: int = 42, mailboxes: int = 20, accounts: int = 150,
             messages_per_mailbox: int = 1500, as_of: date) -> dict[str, Any]:
    """Write a synthetic organisation into `out`; returns the manifest."""
    gen = _Generator(seed, mailboxes, accounts, messages_per_mailbox, as_of)
    gen.build_users()
    gen.build_groups()
    gen.build_accounts()
    gen.build_contacts()
    gen.build_folders()
    gen.build_messages()
    gen.build_events()
    gen.finish_folders()
    return gen.write(Path(out))


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.synthetic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path, help="directory to write")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--mailboxes", type=int, default=20, help="members of sales@ (>= 2)")
    parser.add_argument("--accounts", type=int, default=150)
    parser.add_argument("--messages-per-mailbox", type=int, default=1500)
    parser.add_argument("--as-of", type=date.fromisoformat, default=None,
                        help="last day of the one-year window (default: today, UTC)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    as_of = args.as_of or datetime.now(UTC).date()
    manifest = generate(args.out, seed=args.seed, mailboxes=args.mailboxes,
                        accounts=args.accounts, messages_per_mailbox=args.messages_per_mailbox,
                        as_of=as_of)
    c = manifest["counts"]
    print(f"synthetic org (seed {args.seed}, as of {as_of}): {c['accounts']} accounts, "
          f"{c['contacts']} contacts, {c['users']} users ({c['mailboxes']} mailboxes), "
          f"{c['messages']} messages, {c['events']} events -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
