"""Every sample export in tests/data/exports imports exactly: message count, authors, first and
last local times (expected.json; where each sample comes from: SOURCES.md)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
from wapa.adapters.chat_export import parse_export
from wapa.adapters.chat_export.parser import is_authored_event

DATA = Path(__file__).resolve().parents[1] / "data" / "exports"
EXPECTED: dict[str, dict[str, object]] = json.loads((DATA / "expected.json").read_text("utf-8"))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_imports_exactly(name: str) -> None:
    parsed = parse_export((DATA / name).read_text(encoding="utf-8"), name)
    want = EXPECTED[name]
    got = {
        "messages": len(parsed.messages),
        "authors": sorted(set(parsed.participants)),
        "first": parsed.messages[0].when.isoformat(sep=" "),
        "last": parsed.messages[-1].when.isoformat(sep=" "),
    }
    assert got == want


def test_old_android_dates_without_a_year_take_this_year() -> None:
    parsed = parse_export((DATA / "old_android_month.txt").read_text(encoding="utf-8"))
    year = datetime.now().year
    assert [m.when for m in parsed.messages] == [
        datetime(year, 3, 5, 20, 11),
        datetime(year, 3, 5, 20, 15),
    ]


def test_old_android_day_before_month_without_a_year() -> None:
    # "18 Mar 12:14 -" was never read (the month-name pattern was skipped for a line starting
    # with a digit); group events without an author are system lines.
    parsed = parse_export((DATA / "old_android_day_month.txt").read_text(encoding="utf-8"))
    year = datetime.now().year
    assert [(m.when, m.author, m.media) for m in parsed.messages] == [
        (datetime(year, 3, 18, 12, 20), "Sadie", ""),
        (datetime(year, 3, 18, 12, 21), "Dana", ""),
        (datetime(year, 3, 18, 12, 25), "Sadie", "location"),
        (datetime(year, 4, 2, 9, 5), "+44 7700 900123", "image"),
    ]
    assert parsed.messages[2].text == "near Unnamed Rd\nIsle Of Grain"
    assert parsed.system_skipped == 3 and parsed.format == "DD Mon HH:MM -"


def test_marked_iphone_lines_are_media_or_messages_never_dropped() -> None:
    parsed = parse_export((DATA / "ios_ru_marked.txt").read_text(encoding="utf-8"))
    assert [m.media for m in parsed.messages] == ["", "image", "voice", "document", "", "location"]
    assert parsed.deleted == 1 and parsed.system_skipped == 1


def test_bad_lines_are_skipped_and_reported() -> None:
    parsed = parse_export((DATA / "cut_and_hour_zero.txt").read_text(encoding="utf-8"))
    assert parsed.skipped_lines[0] == (1, "text before the first dated line")
    assert parsed.messages[0].when == datetime(2020, 6, 20, 0, 8)


def test_old_android_group_events_under_the_exporters_name_are_not_messages() -> None:
    # 2013 Android wrote a group's events as the exporter's lines, timed when the phone learnt of
    # them (before the messages that follow), and left the year out for the export's year.
    parsed = parse_export((DATA / "old_android_group_events.txt").read_text(encoding="utf-8"))
    times = [m.when for m in parsed.messages]
    assert times == sorted(times)
    assert parsed.system_skipped == 7 and parsed.group_notices == 7
    assert [m.text for m in parsed.messages if m.author == "Dana"] == ["Happy new year, almost"]
    assert ("Meera", "Priya left") in [(m.author, m.text) for m in parsed.messages]  # only one
    assert times[-2:] == [datetime(2014, 1, 1, 0, 1), datetime(2014, 2, 15, 10, 46)]
    assert parsed.date_order == "month names"


@pytest.mark.parametrize(
    ("text", "event"),
    [
        ("Viresh joined", True),
        ("\u202a+91 94 20 027143\u202c joined", True),
        ("Anuja Nit left", True),
        ("Prabhav was removed", True),
        ("savvy changed the subject to “Happy Diwali”", True),
        ("Only two people have joined", False),
        ("7300 left", False),
        ("ya thats what is left", False),
        ("Viresh joined\nand left", False),
    ],
)
def test_the_shape_of_an_authored_group_event(text: str, event: bool) -> None:
    assert is_authored_event(text) is event
