"""The index page and the customer cards, as HTML strings. Every text is escaped."""

from __future__ import annotations

import hashlib
import re
from datetime import date
from html import escape
from typing import Any

from account_engagement_cards import svg
from account_engagement_cards.data import LEADSPACE_FIRMOGRAPHICS, Account, Site

TREND_WEEKS = 12

EMAIL_SERIES = (
    svg.Series("emails-to", "to the account", "emails_to"),
    svg.Series("emails-from", "from the account", "emails_from"),
)
MEETING_SERIES = (
    svg.Series("meetings-to", "organized by us", "meetings_to"),
    svg.Series("meetings-from", "organized by the account", "meetings_from"),
)


def card_filename(account_id: str) -> str:
    """A safe, unique file name for an account's card (ids are user data)."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", account_id)[:80]
    if safe != account_id or not safe:
        safe = f"{safe}-{hashlib.sha1(account_id.encode()).hexdigest()[:10]}"
    return f"{safe}.html"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _int(value: Any) -> str:
    return "–" if value is None else f"{int(value):,}"


def _days(value: Any) -> str:
    if value is None:
        return "never"
    days = int(value)
    return "today" if days == 0 else f"{days:,} day{'s' if days != 1 else ''} ago"


def _since(value: Any) -> str:
    return "never" if value is None else f"{int(value):,} day{'s' if int(value) != 1 else ''}"


def _timestamp(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if hasattr(value, "strftime") else str(value or "never")


def _hours(value: Any) -> str:
    if value is None:
        return "no replies"
    hours = float(value)
    text = f"{hours:.1f} h"
    return f"{text} ({hours / 24:.1f} days)" if hours >= 48 else text


def _minutes(value: Any) -> str:
    return "no meetings" if value is None else f"{float(value):.0f} min"


def _day(value: date | None) -> str:
    return "–" if value is None else value.strftime("%-d %b %Y")


def _page(title: str, body: str, *, css: str, script: str = "") -> str:
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{_e(title)}</title><link rel=\"stylesheet\" href=\"{css}\"></head>"
        f"<body>{body}{script}</body></html>\n"
    )


def _stale_badge(account: Account) -> str:
    return '<span class="badge stale" title="no email and no meeting for over the stale '\
        'threshold">Stale</span>' if account.stale else ""


# ------------------------------------------------------------------------------ index

INDEX_SCRIPT = """<script>
(function () {
  var table = document.getElementById('accounts');
  var body = table.tBodies[0];
  var search = document.getElementById('search');
  var staleOnly = document.getElementById('stale-only');
  var shown = document.getElementById('shown');
  function filter() {
    var q = search.value.trim().toLowerCase();
    var n = 0;
    Array.prototype.forEach.call(body.rows, function (row) {
      var ok = (!q || row.dataset.search.indexOf(q) !== -1) &&
               (!staleOnly.checked || row.dataset.stale === 'true');
      row.hidden = !ok;
      if (ok) { n += 1; }
    });
    shown.textContent = n;
  }
  function sortBy(th) {
    var index = th.cellIndex;
    var numeric = th.dataset.type === 'number';
    var dir = th.getAttribute('aria-sort') === 'descending' ? 1 : -1;
    if (!th.hasAttribute('aria-sort') && !numeric) { dir = 1; }
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      c.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].dataset.sort, y = b.cells[index].dataset.sort;
      if (numeric) { x = parseFloat(x); y = parseFloat(y); }
      return x < y ? -dir : x > y ? dir : 0;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
    var button = th.querySelector('button');
    if (button) { button.addEventListener('click', function () { sortBy(th); }); }
  });
  search.addEventListener('input', filter);
  staleOnly.addEventListener('change', filter);
  filter();
})();
</script>"""


def render_index(site: Site) -> str:
    rows = []
    for account in site.accounts:
        year = account.year
        never = 10**6  # "never" sorts after any number of days
        days_email = year["DaysSinceLastEmail"]
        days_meeting = year["DaysSinceLastMeeting"]
        search = f"{account.name} {account.account_id}".lower()
        rows.append(
            f'<tr data-account="{_e(account.account_id)}" data-stale="'
            f'{"true" if account.stale else "false"}" data-search="{_e(search)}"'
            f'{" class=stale" if account.stale else ""}>'
            f'<td data-sort="{_e(account.name.lower())}"><a href="accounts/'
            f'{_e(card_filename(account.account_id))}">{_e(account.name)}</a> '
            f'{_stale_badge(account)}<div class="muted">{_e(account.account_id)}</div></td>'
            f'<td class="num score" data-sort="{account.score}">{account.score}</td>'
            f'<td class="num" data-sort="{account.emails}">{_int(account.emails)}</td>'
            f'<td class="num" data-sort="{account.meetings}">{_int(account.meetings)}</td>'
            f'<td class="num" data-sort="{never if days_email is None else days_email}">'
            f"{_days(days_email)}</td>"
            f'<td class="num" data-sort="{never if days_meeting is None else days_meeting}">'
            f"{_days(days_meeting)}</td></tr>"
        )

    def head(label: str, kind: str, sort: str | None = None) -> str:
        state = f' aria-sort="{sort}"' if sort else ""
        align = ' class="num"' if kind == "number" else ""
        return (f'<th scope="col" data-type="{kind}"{state}{align}><button type="button">'
                f"{label}</button></th>")

    stale_count = sum(1 for a in site.accounts if a.stale)
    empty = "" if site.accounts else (
        '<p class="empty">No engagement data yet: land mail and meetings with the loaders and '
        "run <code>dbt build</code>, then rebuild the cards.</p>"
    )
    body = (
        '<header class="top"><h1>Customer cards</h1>'
        f'<p class="muted">{len(site.accounts):,} accounts · engagement over the year '
        f"{_e(_day(site.window_start))} – {_e(_day(site.as_of))} · {stale_count:,} stale · "
        "built "
        f'{_e(site.generated_at.strftime("%Y-%m-%d %H:%M %Z"))}</p></header>'
        '<div class="controls"><label>Search <input id="search" type="search" '
        'placeholder="account name or id" autocomplete="off"></label>'
        '<label><input id="stale-only" type="checkbox"> stale accounts only</label>'
        '<span class="muted"><span id="shown"></span> shown</span></div>'
        '<table id="accounts"><thead><tr>'
        + head("Account", "text")
        + head("Engagement score", "number", "descending")
        + head("Emails (year)", "number")
        + head("Meetings (year)", "number")
        + head("Last email", "number")
        + head("Last meeting", "number")
        + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>" + empty
        + _enrichment_footer(site)
    )
    return _page("Customer cards", body, css="cards.css", script=INDEX_SCRIPT)


def _enrichment_footer(site: Site) -> str:
    items = "".join(
        f"<li><b>{_e(row.get('Enrichment'))}</b>: {_int(row.get('ProfilesEnriched'))} of "
        f"{_int(row.get('ProfilesAttempted'))} accounts enriched, last refreshed "
        f"{_e(_timestamp(row.get('LastRefreshedAt')))} UTC</li>"
        for row in site.enrichments
    )
    return (f'<footer class="muted"><p>Enrichments</p><ul>{items or "<li>none yet</li>"}</ul>'
            "</footer>")


# ------------------------------------------------------------------------------ card

def _tile(label: str, value: str, detail: str = "", *, key: str) -> str:
    return (f'<div class="tile" data-tile="{key}"><div class="label">{label}</div>'
            f'<div class="value" data-value>{value}</div>'
            f'<div class="detail">{detail}</div></div>')


def _trend(account: Account, site: Site) -> str:
    weeks = account.weeks
    partial = ""
    # the week holding the as-of day is usually cut short: its score is left out of the trend
    if weeks and site.as_of is not None and (site.as_of - weeks[-1].start).days < 6:
        days = (site.as_of - weeks[-1].start).days + 1
        partial = (f" The current week ({days} day{'s' if days != 1 else ''} so far, score "
                   f"{weeks[-1].score}) is left out.")
        weeks = weeks[:-1]
    recent = weeks[-TREND_WEEKS:]
    if not recent:
        return '<p class="muted">No weekly scores: no activity in the year.</p>'
    first, last = recent[0].score, recent[-1].score
    change = last - first
    arrow = "▲" if change > 0 else "▼" if change < 0 else "▶"
    return (
        f'<div class="trend">{svg.sparkline(recent, title="Weekly engagement score")}'
        f'<p class="muted">Weekly score, last {len(recent)} weeks: {first} → {last} '
        f'<span class="change">{arrow} {change:+d}</span> (each week scored against the other '
        f"accounts that week).{_e(partial)}</p></div>"
    )


def _leadspace(account: Account, site: Site) -> str:
    row = account.leadspace
    if row is None:
        reason = ("this account was not sent to Leadspace" if site.leadspace_available
                  else "the Leadspace enrichment has not run")
        return (f'<p class="muted" data-leadspace="none">No Leadspace firmographics '
                f"({reason}).</p>")
    # no match: no Leadspace company id (the contract's rule), else no firmographic at all
    no_match = (row.get("LeadspaceCompanyId") is None if "LeadspaceCompanyId" in row
                else all(row.get(c) is None for c in LEADSPACE_FIRMOGRAPHICS if c in row))
    if no_match:
        return ('<p class="muted" data-leadspace="no-match">Leadspace found no match for this '
                f"account (checked {_e(row.get('EnrichedAt') or '–')}).</p>")

    def join(*values: Any) -> str:
        return " · ".join(_e(v) for v in values if v not in (None, ""))

    revenue = row.get("RevenueUsd")
    revenue_text = f"${float(revenue):,.0f}" if isinstance(revenue, int | float) else revenue
    employees = row.get("EmployeeCount")
    fields = [
        ("Company", join(row.get("CompanyName"))),
        ("Website", join(row.get("Website"))),
        ("Industry", join(row.get("Industry"), row.get("SubIndustry"))),
        ("SIC / NAICS", join(row.get("SIC"), row.get("NAICS"))),
        ("Employees", join(None if employees is None else f"{int(employees):,}",
                           row.get("EmployeeRange"))),
        ("Revenue", join(revenue_text, row.get("RevenueRange"))),
        ("Location", join(row.get("City"), row.get("State"), row.get("Country"))),
        ("Match confidence", join(row.get("MatchConfidence"))),
        ("Leadspace id", join(row.get("LeadspaceCompanyId"))),
        ("Enriched", join(_timestamp(row.get("EnrichedAt")))),
    ]
    items = "".join(f"<dt>{label}</dt><dd>{value or '–'}</dd>" for label, value in fields)
    return f'<dl class="firmographics" data-leadspace="match">{items}</dl>'


def render_card(account: Account, site: Site) -> str:
    year = account.year
    weekly = bool(account.weeks)
    charts = (
        '<p class="muted">No email or meeting with this account in the year.</p>' if not weekly
        else (
            '<section class="charts"><h2>Weekly history</h2>'
            + _legend(EMAIL_SERIES, "Emails")
            + svg.bar_chart(account.weeks, EMAIL_SERIES, title="Emails per week", unit="emails",
                            weekly=True)
            + _legend(MEETING_SERIES, "Meetings")
            + svg.bar_chart(account.weeks, MEETING_SERIES, title="Meetings per week",
                            unit="meetings", weekly=True)
            + '</section><section class="charts"><h2>Monthly history</h2>'
            + _legend(EMAIL_SERIES, "Emails")
            + svg.bar_chart(account.months, EMAIL_SERIES, title="Emails per month",
                            unit="emails", weekly=False)
            + _legend(MEETING_SERIES, "Meetings")
            + svg.bar_chart(account.months, MEETING_SERIES, title="Meetings per month",
                            unit="meetings", weekly=False)
            + "</section>"
        )
    )
    tiles = "".join([
        _tile("Engagement score", f'<span class="score">{account.score}</span><small>/100'
              "</small>", "this year, against the other accounts", key="score"),
        _tile("Emails (year)", _int(account.emails),
              f"{_int(year['NoOfEmails_ToAccount'])} to · "
              f"{_int(year['NoOfEmails_FromAccount'])} from the account", key="emails"),
        _tile("Meetings (year)", _int(account.meetings),
              f"{_int(year['NoOfMeetings_ToAccount'])} organized by us · "
              f"{_int(year['NoOfMeetings_FromAccount'])} by the account", key="meetings"),
        _tile("Since the last email", _e(_since(year["DaysSinceLastEmail"])),
              "either direction", key="last-email"),
        _tile("Since the last meeting", _e(_since(year["DaysSinceLastMeeting"])),
              "with anyone of the account", key="last-meeting"),
        _tile("Their reply time", _e(_hours(year["AverageDuration_Of_AccountEmailReplies"])),
              "mean time the account took to answer us", key="reply-time"),
    ])
    people = (
        '<table class="people"><thead><tr><th></th><th scope="col">in emails</th>'
        '<th scope="col">in meetings</th></tr></thead><tbody>'
        f'<tr><th scope="row">Our people</th>'
        f'<td class="num" data-people="org-emails">'
        f'{_int(year["NoOfContactsInvolved_Emails"])}</td>'
        f'<td class="num" data-people="org-meetings">'
        f'{_int(year["NoOfContactsInvolved_Meetings"])}</td></tr>'
        f'<tr><th scope="row">Their people</th>'
        f'<td class="num" data-people="account-emails">'
        f'{_int(year["NoOfAccountContactsInvolved_Emails"])}</td>'
        f'<td class="num" data-people="account-meetings">'
        f'{_int(year["NoOfAccountContactsInvolved_Meetings"])}</td></tr></tbody></table>'
    )
    body = (
        '<nav class="top"><a href="../index.html">← All accounts</a></nav>'
        f'<header><h1>{_e(account.name)} {_stale_badge(account)}</h1>'
        f'<p class="muted">{_e(account.account_id)} · engagement over the year '
        f"{_e(_day(site.window_start))} – {_e(_day(site.as_of))} · first contact "
        f"{_e(_day(year.get('EngagementStartDate')))}</p></header>"
        f'<section class="tiles">{tiles}</section>'
        f'<section class="row"><div><h2>Score trend</h2>{_trend(account, site)}</div>'
        f"<div><h2>People involved</h2>{people}"
        f'<p class="muted">Distinct people, counts only. Average meeting: '
        f'{_e(_minutes(year["AverageDuration_Of_Meetings"]))}.</p></div></section>'
        f"{charts}"
        f'<section><h2>Firmographics (Leadspace)</h2>{_leadspace(account, site)}</section>'
        f'<footer class="muted">Built {_e(site.generated_at.strftime("%Y-%m-%d %H:%M %Z"))} '
        "from the warehouse's <code>office</code>, <code>stale_accounts</code> and "
        "<code>leadspace</code> tables.</footer>"
    )
    return _page(f"{account.name} – customer card", body, css="../cards.css")


def _legend(series: tuple[svg.Series, ...], what: str) -> str:
    keys = "".join(
        f'<span class="key"><i class="swatch bar-{s.key}"></i>{_e(s.label)}</span>'
        for s in series
    )
    return f'<h3>{what} <span class="legend">{keys}</span></h3>'


CSS = """
:root { --fg: #1d2330; --muted: #5d6678; --line: #d9dee8; --bg: #f6f7fb; --card: #fff;
  --to: #2f6fd6; --from: #e8872c; --stale: #b3261e; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1080px; padding: 24px 28px 40px; color: var(--fg);
  background: var(--bg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; }
h1 { font-size: 1.6rem; margin: 0 0 4px; } h2 { font-size: 1.1rem; margin: 18px 0 8px; }
h3 { font-size: .95rem; margin: 14px 0 2px; font-weight: 600; }
a { color: #1f5bb8; } .muted { color: var(--muted); } code { font-size: .9em; }
.badge { display: inline-block; font-size: .72rem; font-weight: 700; letter-spacing: .03em;
  padding: 1px 7px; border-radius: 9px; vertical-align: middle; text-transform: uppercase; }
.badge.stale { background: #fbe3e1; color: var(--stale); border: 1px solid #f1b7b2; }
.controls { display: flex; gap: 18px; align-items: center; flex-wrap: wrap; margin: 14px 0; }
.controls input[type=search] { font: inherit; padding: 5px 9px; width: 260px;
  border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; background: var(--card); }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
#accounts td .muted { font-size: .8rem; }
#accounts th button { all: unset; cursor: pointer; font-weight: 600; }
#accounts th[aria-sort=descending] button::after { content: " ▼"; }
#accounts th[aria-sort=ascending] button::after { content: " ▲"; }
#accounts td.score { font-weight: 700; }
tr.stale td:first-child { border-left: 4px solid var(--stale); }
.tiles { display: grid; grid-template-columns: repeat(auto-fit, minmax(155px, 1fr));
  gap: 10px; margin-top: 14px; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 10px 12px; }
.tile .label { font-size: .8rem; color: var(--muted); }
.tile .value { font-size: 1.45rem; font-weight: 700; font-variant-numeric: tabular-nums; }
.tile .value small { font-size: .8rem; color: var(--muted); font-weight: 400; }
.tile .detail { font-size: .8rem; color: var(--muted); }
.row { display: grid; grid-template-columns: 1fr 1fr; gap: 24px; margin-top: 14px; }
.people { max-width: 360px; }
.charts, .row > div, .firmographics { background: var(--card); border: 1px solid var(--line);
  border-radius: 8px; padding: 4px 14px 10px; margin-top: 14px; }
.row > div { margin-top: 0; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: #e6e9f0; } .chart .baseline { stroke: #9aa3b5; }
.chart .axis { font-size: 11px; fill: var(--muted); }
.bar-emails-to, .bar-meetings-to { fill: var(--to); background: var(--to); }
.bar-emails-from, .bar-meetings-from { fill: var(--from); background: var(--from); }
.legend { font-weight: 400; font-size: .8rem; color: var(--muted); margin-left: 10px; }
.legend .key { margin-right: 12px; white-space: nowrap; }
.swatch { display: inline-block; width: 10px; height: 10px; margin-right: 4px;
  border-radius: 2px; vertical-align: -1px; }
.spark { width: 240px; height: 56px; } .spark-line { fill: none; stroke: var(--to);
  stroke-width: 2; } .spark-dot { fill: var(--to); } .spark .grid { stroke: #e6e9f0; }
.change { font-weight: 600; color: var(--fg); }
.firmographics { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px;
  padding: 10px 14px; }
.firmographics dt { color: var(--muted); } .firmographics dd { margin: 0; }
footer { margin-top: 26px; font-size: .8rem; }
@media (max-width: 720px) { .row { grid-template-columns: 1fr; } body { padding: 12px; } }
@media print {
  @page { margin: 14mm; }
  body { background: #fff; max-width: none; padding: 0; font-size: 11pt; }
  nav, .controls, #accounts th button::after { display: none; }
  .tile, .charts, .row > div, .firmographics, table { break-inside: avoid; }
  .charts, .row > div, .firmographics, .tile { border-color: #bbb; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  a { color: inherit; text-decoration: none; }
}
"""
