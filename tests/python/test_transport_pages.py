"""A page's links are read without parsing its records (loaders/graph/transport.py, `page_links`),
and only where that is certain; a page found broken later is kept, not lost."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from loaders.graph.landing import Lander, PageItem
from loaders.graph.transport import Page, page_links
from loaders.warehouse import connect

NEXT = "https://graph.microsoft.com/v1.0/users/u1/mailFolders/f1/messages/delta?$skiptoken=a%5Db"
DELTA = "https://graph.microsoft.com/v1.0/users/u1/mailFolders/f1/messages/delta?$deltatoken=z"
RECORD = {"id": "m1", "internetMessageId": "<1@x>", "sentDateTime": "2026-06-01T09:00:00Z"}


def dumps(page: dict) -> bytes:
    return orjson.dumps(page)


@pytest.mark.parametrize("page", [
    # the emulator's order (and Graph's for a list): the links after the records
    {"@odata.context": "c", "value": [RECORD, RECORD], "@odata.nextLink": NEXT},
    {"@odata.context": "c", "value": [RECORD], "@odata.deltaLink": DELTA},
    # the order of Graph's delta examples: the link before the records
    {"@odata.context": "c", "@odata.nextLink": NEXT, "value": [RECORD]},
    {"@odata.context": "c", "@odata.deltaLink": DELTA, "value": []},
    # an empty page that still goes on; a last page of a list, without a link
    {"@odata.context": "c", "value": [], "@odata.nextLink": NEXT},
    {"@odata.context": "c", "value": [RECORD]},
    # a record whose text looks like a link: it is inside a string, so never a member name
    {"value": [{**RECORD, "subject": '"@odata.nextLink": "https://evil"}'}],
     "@odata.deltaLink": DELTA},
])
def test_links_are_the_ones_a_full_parse_finds(page: dict) -> None:
    raw = dumps(page)
    expected = {k: v for k, v in page.items() if k in ("@odata.nextLink", "@odata.deltaLink")}
    assert page_links(raw) == expected
    assert page_links(orjson.dumps(page, option=orjson.OPT_INDENT_2)) == expected
    built = Page(raw, page_links(raw))
    assert (built.next_link, built.delta_link) == (
        page.get("@odata.nextLink"), page.get("@odata.deltaLink"))


@pytest.mark.parametrize("raw", [
    # a record with a member of a link's name: the members found after it do not close the page
    dumps({"value": [{**RECORD, "@odata.nextLink": "x"}], "@odata.deltaLink": DELTA}),
    dumps({"value": [{**RECORD, "@odata.nextLink": "x"}]}),
    # a "value" member inside an object before the records
    dumps({"@odata.context": {"value": 1}, "value": [RECORD], "@odata.nextLink": NEXT}),
    # not a collection page; not JSON at all; cut short
    dumps({"id": "AAMk", "displayName": "Inbox"}),
    b"<html>502 Bad Gateway</html>",
    dumps({"value": [RECORD], "@odata.nextLink": NEXT})[:-5],
])
def test_uncertain_pages_are_left_to_a_full_parse(raw: bytes) -> None:
    assert page_links(raw) is None


def test_a_page_found_broken_is_kept_whole_and_the_rest_of_the_batch_lands(
        tmp_path: Path) -> None:
    good = dumps({"value": [RECORD], "@odata.deltaLink": DELTA})
    broken = b'{"value": [{"id": "m2", "sentDateTime": "2026-06-01T09:00:00Z"' + b"}, {oops" + \
        b'], "@odata.deltaLink": "' + DELTA.encode() + b'"}'
    assert page_links(broken) == {"@odata.deltaLink": DELTA}  # its links read fine
    con = connect(tmp_path / "w.duckdb")
    lander = Lander(con, "run1")
    lander.start()
    for stream, raw in (("messages:f1", good), ("messages:f2", broken)):
        lander.put(PageItem("messages", "u1", stream, raw, stream.split(":")[1],
                            {"window_start": None, "next_link": None, "delta_link": DELTA}))
    lander.close()
    assert con.execute("select _mailbox_id, id from raw_graph.messages").fetchall() == [
        ("u1", "m1")]
    kept = con.execute("select record, problem from raw_graph.malformed_records").fetchall()
    assert len(kept) == 1
    assert kept[0][0] == broken.decode()
    assert kept[0][1].startswith("the page is not JSON")


def test_records_land_as_sent_whatever_the_layout_of_their_page(tmp_path: Path) -> None:
    """The writer splits pages into records without decoding them (loaders/graph/spool.py,
    `_spool`): each record lands with its own page's mailbox and folder, whatever the page's
    whitespace or the text inside its strings; a record that is not an object is kept aside."""
    def message(n: int, **extra) -> dict:
        return {"id": f"m{n}", "internetMessageId": f"<{n}@x>", "sentDateTime": f"2026-06-0{n}"
                "T09:00:00Z", "from": {"emailAddress": {"address": f"a{n}@x.com"}},
                "toRecipients": [{"emailAddress": {"address": f"b{n}@y.com", "name": "B, \"Y\""}}],
                **extra}
    pages = [
        # pretty-printed, links first
        ("u1", "f1", orjson.dumps({"@odata.deltaLink": DELTA, "value": [message(1), message(2)]},
                                  option=orjson.OPT_INDENT_2)),
        # strings holding what looks like the spool's own syntax, escapes and line breaks
        ("u2", "f2", dumps({"value": [message(3, subject='"},\n{"_page":0,"id":"m9"}'),
                                      message(4, conversationId="\u00e9t\u00e9 \\ \u2603")]})),
        ("u1", "f3", dumps({"value": [], "@odata.nextLink": NEXT})),
        # an empty object lands nothing; a string is no record: kept aside, its page lands
        ("u2", "f4", dumps({"value": [{}, "oops", message(5)], "@odata.deltaLink": DELTA})),
        # pages without a list of records: kept whole
        ("u1", "f5", dumps({"value": {"id": "m6"}, "@odata.deltaLink": DELTA})),
        ("u1", "f6", dumps([message(7)])),
    ]
    con = connect(tmp_path / "w.duckdb")
    lander = Lander(con, "run1")
    lander._land_pages([PageItem("messages", mailbox, f"messages:{folder}", raw, folder)
                        for mailbox, folder, raw in pages])
    lander.close()
    landed = con.execute(
        """select _mailbox_id, _folder_id, id, internetMessageId, sentDateTime,
            "from".emailAddress.address, toRecipients[1].emailAddress.name, conversationId
        from raw_graph.messages order by id"""
    ).fetchall()
    assert landed == [
        ("u1", "f1", "m1", "<1@x>", "2026-06-01T09:00:00Z", "a1@x.com", 'B, "Y"', None),
        ("u1", "f1", "m2", "<2@x>", "2026-06-02T09:00:00Z", "a2@x.com", 'B, "Y"', None),
        ("u2", "f2", "m3", "<3@x>", "2026-06-03T09:00:00Z", "a3@x.com", 'B, "Y"', None),
        ("u2", "f2", "m4", "<4@x>", "2026-06-04T09:00:00Z", "a4@x.com", 'B, "Y"',
         "\u00e9t\u00e9 \\ \u2603"),
        ("u2", "f4", "m5", "<5@x>", "2026-06-05T09:00:00Z", "a5@x.com", 'B, "Y"', None),
    ]
    no_list = "the page holds no list of records (`value`)"
    assert con.execute(
        "select _mailbox_id, stream, record, problem from raw_graph.malformed_records order by 2"
    ).fetchall() == [("u2", "messages:f4", '"oops"', "the record is not a JSON object"),
                     ("u1", "messages:f5", pages[4][2].decode(), no_list),
                     ("u1", "messages:f6", pages[5][2].decode(), no_list)]
    stats = {stream: (s.pages, s.records, s.malformed) for (_, stream), s in lander.stats.items()}
    assert stats == {"messages:f1": (1, 2, 0), "messages:f2": (1, 2, 0),
                     "messages:f3": (1, 0, 0), "messages:f4": (1, 1, 1),
                     "messages:f5": (1, 0, 1), "messages:f6": (1, 0, 1)}
