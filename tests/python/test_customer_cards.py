"""The customer cards in a real browser: Debian's Chromium driven by Playwright.

The site is the one a small `make demo` writes (fixture `demo_build`); what the browser shows
is compared with figures queried from the warehouse here, independently of the cards' code.
Screenshots are saved under .test/screenshots/ (the paths are printed).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from account_engagement_cards.cli import main as cards_main
from account_engagement_cards.pages import card_filename

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = ROOT / ".test" / "screenshots"


def query(warehouse: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(
            "no Chromium at /usr/bin/chromium: `make setup` installs Debian's chromium with "
            "apt-get and could not here, so the customer cards are not tested in a browser"
        )
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        yield context.new_page()
    finally:
        context.close()


def shot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_demo_writes_one_card_per_account_and_prints_where(demo_build):
    warehouse = demo_build / "warehouse.duckdb"
    accounts = {row[0] for row in query(
        warehouse, "select \"AccountId\" from office where \"AggregationLevel\" = 'Year'"
    )}
    site = demo_build / "customer_cards"
    cards = {path.name for path in (site / "accounts").glob("*.html")}
    assert len(accounts) == 24
    assert cards == {card_filename(account) for account in accounts}
    log = (demo_build / "demo.log").read_text()
    assert f"customer cards: {site / 'index.html'}" in log
    assert f"(for BI tools): {demo_build / 'parquet'}" in log


def test_index_lists_sorts_searches_and_marks_the_stale(demo_build, page):
    warehouse = demo_build / "warehouse.duckdb"
    year = query(warehouse, """
        select o."AccountId", o."EngagementScore", a."AccountName"
        from office as o inner join office_accounts as a on o."AccountId" = a."AccountId"
        where o."AggregationLevel" = 'Year'
    """)
    stale = {row[0] for row in query(warehouse, 'select "AccountId" from stale_accounts')}
    assert stale, "the demo organisation has stale accounts"

    page.goto((demo_build / "customer_cards" / "index.html").as_uri())
    rows = page.locator("#accounts tbody tr")
    assert rows.count() == len(year)
    shown_scores = [int(s) for s in page.locator("#accounts tbody td.score").all_inner_texts()]
    assert shown_scores == sorted((row[1] for row in year), reverse=True)
    shown_stale = set(page.eval_on_selector_all(
        "#accounts tbody tr[data-stale=true]", "rows => rows.map(r => r.dataset.account)"
    ))
    assert shown_stale == stale
    assert page.locator("#accounts tbody tr[data-stale=true] .badge.stale").count() == len(stale)
    shot(page, "index.png")

    # sort by score, lowest first, by clicking the header twice (descending -> ascending)
    page.get_by_role("button", name="Engagement score").click()
    ascending = [int(s) for s in page.locator("#accounts tbody td.score").all_inner_texts()]
    assert ascending == sorted(row[1] for row in year)

    # search by a name: only that account (and others of the same name) stays visible
    name = sorted(row[2] for row in year)[0]
    page.fill("#search", name.upper())
    visible = page.locator("#accounts tbody tr:not([hidden])")
    assert visible.count() == sum(1 for row in year if name.lower() in row[2].lower())
    assert name in visible.first.inner_text()
    page.fill("#search", "")
    page.check("#stale-only")
    assert page.locator("#accounts tbody tr:not([hidden])").count() == len(stale)


def test_card_shows_score_totals_and_the_charts_bars(demo_build, page):
    warehouse = demo_build / "warehouse.duckdb"
    # the known account: the highest Year score
    account_id, score, e_to, e_from, m_to, m_from, days_email = query(warehouse, """
        select "AccountId", "EngagementScore", "NoOfEmails_ToAccount", "NoOfEmails_FromAccount",
            "NoOfMeetings_ToAccount", "NoOfMeetings_FromAccount", "DaysSinceLastEmail"
        from office where "AggregationLevel" = 'Year'
        order by "EngagementScore" desc, "AccountId" limit 1
    """)[0]
    # totals of the last year, independently: the sum of the account's Month rows
    month_emails, month_meetings = query(warehouse, """
        select sum("NoOfEmails_ToAccount" + "NoOfEmails_FromAccount"),
            sum("NoOfMeetings_ToAccount" + "NoOfMeetings_FromAccount")
        from office where "AggregationLevel" = 'Month' and "AccountId" = ?
    """, account_id)[0]
    assert (month_emails, month_meetings) == (e_to + e_from, m_to + m_from)
    weeks = query(warehouse, """
        select strftime("AggregationStartDate", '%Y-%m-%d'), "NoOfEmails_ToAccount",
            "NoOfEmails_FromAccount", "NoOfMeetings_ToAccount", "NoOfMeetings_FromAccount"
        from office where "AggregationLevel" = 'Week' and "AccountId" = ?
        order by "AggregationStartDate"
    """, account_id)
    assert len(weeks) >= 52 and month_emails > 0

    page.goto((demo_build / "customer_cards" / "accounts" / card_filename(account_id)).as_uri())
    assert page.locator("[data-tile=score] .score").inner_text() == str(score)
    assert page.locator("[data-tile=emails] [data-value]").inner_text() == f"{month_emails:,}"
    assert page.locator("[data-tile=meetings] [data-value]").inner_text() == f"{month_meetings:,}"
    assert page.locator("[data-tile=last-email] [data-value]").inner_text().startswith(
        f"{days_email} day"
    )

    charts = page.locator("svg.chart")
    assert charts.count() == 4  # weekly emails, weekly meetings, monthly emails, monthly meetings
    weekly_emails = charts.nth(0)
    bars = weekly_emails.evaluate("""svg => Array.from(svg.querySelectorAll('rect.bar')).map(r => ({
        series: r.dataset.series, period: r.dataset.period, value: Number(r.dataset.value),
        height: r.getBoundingClientRect().height}))""")
    assert len(bars) == 2 * len(weeks)
    expected = {}
    for start, w_e_to, w_e_from, _, _ in weeks:
        expected[("emails-to", start)] = w_e_to
        expected[("emails-from", start)] = w_e_from
    assert {(b["series"], b["period"]): b["value"] for b in bars} == expected
    # drawn heights are proportional to the values: one pixel scale for every bar
    tallest = max(bars, key=lambda b: b["value"])
    assert tallest["height"] > 20
    per_unit = tallest["height"] / tallest["value"]
    for bar in bars:
        assert bar["height"] == pytest.approx(bar["value"] * per_unit, abs=0.6)

    weekly_meetings = charts.nth(1).evaluate(
        "svg => Array.from(svg.querySelectorAll('rect.bar')).map(r => Number(r.dataset.value))"
    )
    assert sum(weekly_meetings) == m_to + m_from

    # Leadspace: firmographics when that enrichment has a row for the account, else a sentence
    has_leadspace = bool(query(
        warehouse, "select 1 from information_schema.tables where table_name = 'leadspace'"
    ))
    firmographics = page.locator("[data-leadspace]")
    if has_leadspace and query(
        warehouse,
        'select 1 from leadspace where "AccountId" = ? and "LeadspaceCompanyId" is not null',
        account_id,
    ):
        assert firmographics.get_attribute("data-leadspace") == "match"
        assert "Match confidence" in firmographics.inner_text()
    else:
        assert "No Leadspace firmographics" in firmographics.inner_text() or (
            firmographics.get_attribute("data-leadspace") == "no-match"
        )
    path = shot(page, "card.png")
    assert path.stat().st_size > 20_000


def test_names_are_shown_as_text_never_run(demo_build, tmp_path, page):
    """An account name is user data: markup in it is shown, not executed."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_build / "warehouse.duckdb", warehouse)
    hostile = '<img src=x onerror="document.title=\'owned\'"> & "Sons" <b>'
    with duckdb.connect(str(warehouse)) as con:  # the name as the mart the cards read has it
        account_id = con.execute(
            'select "AccountId" from office_accounts order by "AccountId" limit 1'
        ).fetchone()[0]
        con.execute('update office_accounts set "AccountName" = ? where "AccountId" = ?',
                    [hostile, account_id])
    out = tmp_path / "site"
    assert cards_main(["--warehouse", str(warehouse), "--out", str(out)]) == 0

    page.goto((out / "accounts" / card_filename(account_id)).as_uri())
    assert page.locator("h1").inner_text().startswith(hostile.strip())
    assert page.locator("img").count() == 0 and page.title() != "owned"
    page.goto((out / "index.html").as_uri())
    assert page.locator("#accounts img").count() == 0
    assert page.get_by_role("link", name=hostile.strip()).count() == 1


def test_bad_state_exits_2_with_a_sentence(demo_build, tmp_path, capsys):
    assert cards_main(["--warehouse", str(tmp_path / "none.duckdb")]) == 2
    assert "does not exist" in capsys.readouterr().err
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert cards_main(["--warehouse", str(empty), "--out", str(tmp_path / "s")]) == 2
    assert "run `dbt build` first" in capsys.readouterr().err
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("keep me")
    warehouse = str(demo_build / "warehouse.duckdb")
    assert cards_main(["--warehouse", warehouse, "--out", str(notes)]) == 2
    assert "not a customer-cards folder" in capsys.readouterr().err
    assert [p.name for p in notes.iterdir()] == ["mine.txt"]


# the marts the cards read (account_engagement_cards/data.py)
CARD_MARTS = ("office", "office_accounts", "stale_accounts", "leadspace", "enrichment_status")
BUILT_AT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} [^<]*")  # the site's "Built ..." stamp


def site_files(folder: Path) -> dict[str, str]:
    """Every page of a site by its path, the build's time stamp blanked."""
    return {path.relative_to(folder).as_posix(): BUILT_AT.sub("(built)", path.read_text())
            for path in sorted(folder.rglob("*.html"))}


def test_cards_find_the_marts_in_another_schema(demo_build, tmp_path, monkeypatch, capsys):
    """A project that installs this one as a package builds the marts in a schema of its own:
    `--schema` (or ACCOUNT_ENGAGEMENT_SCHEMA) points the cards there. The marts are moved to
    schema `ae`, none left in `main`: the same site as from `main`, page for page."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copy(demo_build / "warehouse.duckdb", warehouse)
    with duckdb.connect(str(warehouse)) as con:
        kinds = dict(con.execute("select table_name, table_type from information_schema.tables "
                                 "where table_schema = 'main'").fetchall())
        con.execute("create schema ae")
        for mart in CARD_MARTS:
            con.execute(f"create table ae.{mart} as select * from main.{mart}")
            con.execute(f"drop {'view' if kinds[mart] == 'VIEW' else 'table'} main.{mart}")
    monkeypatch.delenv("ACCOUNT_ENGAGEMENT_SCHEMA", raising=False)
    expected = site_files(demo_build / "customer_cards")
    assert len(expected) == 25  # the index and the 24 accounts' cards

    assert cards_main(["--warehouse", str(warehouse), "--out", str(tmp_path / "flag"),
                       "--schema", "ae"]) == 0
    assert site_files(tmp_path / "flag") == expected
    monkeypatch.setenv("ACCOUNT_ENGAGEMENT_SCHEMA", "ae")
    assert cards_main(["--warehouse", str(warehouse), "--out", str(tmp_path / "env")]) == 0
    assert site_files(tmp_path / "env") == expected
    capsys.readouterr()

    # main, where the marts are no longer: the sentence of a warehouse dbt has not built
    assert cards_main(["--warehouse", str(warehouse), "--out", str(tmp_path / "main"),
                       "--schema", "main"]) == 2
    assert "has no office, stale_accounts, enrichment_status table: run `dbt build` first" in (
        capsys.readouterr().err)
    assert cards_main(["--warehouse", str(warehouse), "--out", str(tmp_path / "none"),
                       "--schema", "analytics"]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"cards: the warehouse {warehouse} has no schema 'analytics' (it has ")
    assert "ae" in said.split("(it has ", 1)[1].split(")", 1)[0].split(", ")
    assert said.rstrip().endswith("with --schema or ACCOUNT_ENGAGEMENT_SCHEMA")
    assert not (tmp_path / "main").exists() and not (tmp_path / "none").exists()
