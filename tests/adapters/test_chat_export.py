"""wapa import-export: WhatsApp chat exports in many locale formats -> a replayable recording."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wapa.adapters.chat_export import (
    ExportError,
    ParsedExport,
    convert,
    import_export,
    parse_export,
    read_export,
)
from wapa.adapters.chat_export.formats import match_header, timestamp
from wapa.adapters.recording import read_recording
from wapa.cli import main

DATA = Path(__file__).resolve().parents[1] / "data" / "exports"


def _parse(name: str) -> ParsedExport:
    return parse_export((DATA / name).read_text(encoding="utf-8"), name)


# file, format, messages, first local time, participants, media kinds, system lines skipped
FORMATS = [
    (
        "android_en_gb.txt",
        "DD/MM/YYYY, HH:MM -",
        5,
        "2018-06-23 01:55",
        ["Alice Smith", "Dana"],
        ["image"],
        1,
    ),
    (
        "android_en_us.txt",
        "MM/DD/YY, h:MM AM -",
        4,
        "2018-06-23 13:55",
        ["Bob", "Dana"],
        ["image"],
        1,
    ),
    (
        "ios_en_us.txt",
        "[MM/DD/YY, h:MM:SS AM]",
        4,
        "2018-06-23 13:55:12",
        ["Bob", "Dana"],
        ["sticker"],
        1,
    ),
    (
        "ios_en_gb_group.txt",
        "[DD/MM/YYYY, HH:MM:SS]",
        6,
        "2018-06-23 13:56:01",
        ["Alice", "Carlos", "Dana"],
        ["image", "image", "voice"],
        3,
    ),
    (
        "ios_de.txt",
        "[DD.MM.YY, HH:MM:SS]",
        4,
        "2018-06-23 01:55:12",
        ["Anna", "Dana"],
        ["video"],
        0,
    ),
    ("android_de.txt", "DD.MM.YY, HH:MM -", 3, "2018-06-23 01:55", ["Anna", "Dana"], ["image"], 1),
    (
        "finnish.txt",
        "DD.MM.YYYY klo HH.MM.SS -",
        3,
        "2018-06-13 21:25:15",
        ["Mikko", "Dana"],
        [],
        0,
    ),
    ("french.txt", "DD/MM/YYYY à HH:MM -", 3, "2018-06-23 01:55", ["Claire", "Dana"], ["image"], 1),
    ("spanish_12h.txt", "DD/MM/YY h:MM AM -", 3, "2018-06-23 13:55", ["Lucía", "Dana"], [], 1),
    ("brazil.txt", "DD/MM/YYYY HH:MM -", 3, "2018-06-23 13:55", ["Pedro", "Dana"], ["image"], 0),
    ("iso_dash.txt", "YYYY-MM-DD, HH:MM -", 3, "2018-06-23 13:55", ["Sam", "Dana"], [], 0),
    (
        "dutch_dash.txt",
        "DD-MM-YYYY HH:MM -",
        3,
        "2018-06-23 13:55",
        ["Joost", "Dana"],
        ["image"],
        1,
    ),
    (
        "colon_style.txt",
        "DD/MM/YY, h:MM:SS AM:",
        2,
        "2019-08-21 23:28:51",
        ["Jon Doe", "Dana"],
        [],
        0,
    ),
    # Korean and Chinese: year first, 오전/오후 and 上午/下午 before the time, dates in words
    ("android_ko.txt", "YYYY.MM.DD h:MM AM -", 4, "2023-01-05 00:10", ["민수", "Dana"], [], 0),
    (
        "android_ko_words.txt",
        "YYYY年M月D日 h:MM AM -",
        3,
        "2023-01-05 15:04",
        ["민수", "Dana"],
        [],
        0,
    ),
    ("ios_zh.txt", "[YYYY/MM/DD h:MM:SS AM]", 3, "2023-01-05 09:15:02", ["小明", "Dana"], [], 0),
    (
        "android_zh_words.txt",
        "YYYY年M月D日 h:MM AM -",
        3,
        "2023-01-05 09:15",
        ["小明", "Dana"],
        [],
        0,
    ),
    # a weekday before the date
    (
        "android_weekday_en.txt",
        "Ddd, DD/MM/YYYY, h:MM AM -",
        3,
        "2023-01-05 15:04",
        ["Bob", "Dana"],
        [],
        0,
    ),
    (
        "android_weekday_fr.txt",
        "Ddd, DD Mon YYYY à HH:MM -",
        3,
        "2023-01-05 15:04",
        ["Zoé", "Dana"],
        [],
        0,
    ),
]


@pytest.mark.parametrize(("name", "fmt", "count", "first", "people", "media", "system"), FORMATS)
def test_locale_formats(
    name: str, fmt: str, count: int, first: str, people: list[str], media: list[str], system: int
) -> None:
    parsed = _parse(name)
    assert parsed.format == fmt
    assert len(parsed.messages) == count
    assert parsed.messages[0].when == datetime.fromisoformat(first)
    assert parsed.participants == people
    assert [m.media for m in parsed.messages if m.media] == media
    assert parsed.system_skipped == system


@pytest.mark.parametrize(
    ("line", "when"),
    [
        ("2023. 1. 5. 오후 3:04 - 민수: 안녕", datetime(2023, 1, 5, 15, 4)),
        ("[2023. 1. 5. 오전 12:04:05] 민수: 안녕", datetime(2023, 1, 5, 0, 4, 5)),
        ("2023년 1월 5일 오후 3:04 - 민수: 안녕", datetime(2023, 1, 5, 15, 4)),
        ("2023/1/5 下午3:04 - 小明: 你好", datetime(2023, 1, 5, 15, 4)),
        ("[2023/1/5 下午12:04:05] 小明: 你好", datetime(2023, 1, 5, 12, 4, 5)),
        ("2023年1月5日 下午3:04 - 小明: 你好", datetime(2023, 1, 5, 15, 4)),
        ("2023年1月5日下午3:04 - 小明: 你好", datetime(2023, 1, 5, 15, 4)),
        ("[2023年12月31日 23:59:59] 小明: 你好", datetime(2023, 12, 31, 23, 59, 59)),
        ("Thu, 05/01/2023, 15:04 - Bob: hi", datetime(2023, 1, 5, 15, 4)),
        ("jeu. 5 janv. 2023 à 15:04 - Zoé: salut", datetime(2023, 1, 5, 15, 4)),
        ("[sam. 30 déc. 2023 à 23:59:01] Zoé: salut", datetime(2023, 12, 30, 23, 59, 1)),
    ],
)
def test_korean_chinese_and_weekday_headers(line: str, when: datetime) -> None:
    h = match_header(line)
    assert h is not None and timestamp(h, True) == when
    assert h.rest.split(": ")[1] in ("안녕", "你好", "hi", "salut")


@pytest.mark.parametrize(
    "line",
    [
        "Hello, 05/01/2023, 15:04 - Bob: hi",  # not a weekday
        "2023/1/123 15:04 - Bob: hi",  # a year-first date ends with a day
        "5/1/3, 15:04 - Bob: hi",  # any other with a year
        "2023년 1월 5 오후 3:04 - 민수: 안녕",  # 일 missing
    ],
)
def test_near_misses_are_not_headers(line: str) -> None:
    assert match_header(line) is None


def test_a_weekday_header_inside_a_file_without_weekdays_is_message_text() -> None:
    parsed = parse_export(
        "05/01/2023, 15:04 - Bob: the log said\n"
        "Thu, 05/01/2023, 15:04 - Bob: hi\n"
        "05/01/2023, 15:05 - Dana: I see\n"
    )
    assert [m.text for m in parsed.messages] == [
        "the log said\nThu, 05/01/2023, 15:04 - Bob: hi",
        "I see",
    ]


def test_the_weekday_settles_the_date_order() -> None:
    # 12-hour "/" dates that both readings keep in order would be taken as US month first; but
    # Thu, 05/01/2023 is 5 January (1 May 2023 was a Monday).
    parsed = _parse("android_weekday_en.txt")
    assert parsed.day_first
    assert parsed.date_order == "day first (Thu 05/01/2023 cannot be read the other way)"


def test_twelve_hour_clock_midnight_and_noon() -> None:
    us = _parse("android_en_us.txt").messages
    assert us[2].when == datetime(2018, 6, 24, 0, 5) and us[3].when == datetime(2018, 6, 24, 9, 41)
    ios = _parse("ios_en_us.txt").messages
    assert ios[2].when == datetime(2018, 6, 23, 23, 5, 40) and ios[3].when == datetime(
        2018, 6, 24, 0, 30
    )


def test_multi_line_messages_are_merged() -> None:
    gb = _parse("android_en_gb.txt").messages
    assert (
        gb[1].text
        == "I wanted to ask about the flat.\nIt's about the keys:\ncan you leave them with Tom?"
    )
    assert _parse("ios_en_us.txt").messages[3].text == "ok\nno worries"


def test_media_captions_deleted_and_ios_markers() -> None:
    us = _parse("android_en_us.txt").messages
    assert (us[1].media, us[1].text) == ("image", "this is the place")
    gb = _parse("android_en_gb.txt")
    assert gb.deleted == 1 and all("deleted" not in m.text for m in gb.messages)
    group = _parse("ios_en_gb_group.txt")
    assert group.participants == ["Alice", "Carlos", "Dana"]  # "~ Carlos", not the group as author
    assert all("\u200e" not in m.text for m in group.messages)


def test_day_first_is_decided_from_the_whole_file() -> None:
    text = "01/02/2020, 10:00 - A: one\n05/02/2020, 10:00 - B: two\n25/02/2020, 10:00 - A: three\n"
    assert parse_export(text).messages[0].when == datetime(2020, 2, 1, 10, 0)
    text = "01/02/2020, 10:00 - A: one\n02/25/2020, 10:00 - B: two\n"
    assert parse_export(text).messages[0].when == datetime(2020, 1, 2, 10, 0)
    # one impossible date is skipped and reported, not the whole import
    disagree = parse_export(
        "13/02/2020, 10:00 - A: x\n14/02/2020, 10:00 - A: z\n02/25/2020, 10:00 - B: y\n"
    )
    assert len(disagree.messages) == 2 and disagree.skipped_lines[0][0] == 3


def test_a_date_inside_a_message_of_another_shape_is_not_a_new_message() -> None:
    text = "[23.06.18, 01:55:12] Anna: see the log:\n23/06/2018, 01:55 - X: not a header here\n"
    parsed = parse_export(text)
    assert len(parsed.messages) == 1 and "not a header here" in parsed.messages[0].text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            (DATA / "broken.txt").read_text(),
            r"x\.txt:1: not a WhatsApp chat export line .*'name,date,message'",
        ),
        ("", r"x\.txt: no messages found"),
        ("23/06/2018, 01:55 - Messages are encrypted.\n", r"no messages with an author"),
        ("31/02/2018, 01:55 - A: hi\n", r"x\.txt:1: bad date or time"),
        ("6/23/18, 13:55 PM - A: hi\n", r"x\.txt:1: bad date or time .*hour 13"),
    ],
)
def test_unreadable_files_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ExportError, match=message):
        parse_export(text, "x.txt")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=60),
            st.sampled_from(
                [
                    "23/06/2018, 01:55 - A: hi",
                    "[6/23/18, 1:55:12\u202fPM] B: yo",
                    "\u200e",
                    "13.6.2018 klo 21.25.15 - C: x",
                    "99/99/99, 99:99 - D: x",
                    "1/1/1, 1:11 - : ",
                    "[1.1.2000, 0.00]",
                    "2018-06-23, 01:55 - : ",
                ]
            ),
        ),
        max_size=12,
    )
)
def test_garbage_never_crashes_the_parser(lines: list[str]) -> None:
    try:
        parsed = parse_export("\n".join(lines), "fuzz.txt")
    except ExportError as exc:
        assert str(exc).startswith("fuzz.txt")
        return
    assert parsed.messages and all(m.author for m in parsed.messages)
    try:
        convert(parsed, parsed.participants[0], "Fuzz")
    except ExportError as exc:
        assert "--tz" in str(exc) or "owner" in str(exc)


def test_convert_maps_owner_direct_and_group_chats_and_stable_ids() -> None:
    chat = convert(_parse("android_en_gb.txt"), "DANA", "Alice Smith", tz="Europe/Berlin")
    assert not chat.is_group and chat.chat_id == "alice-smith@import"
    assert chat.persona.owner_name == "Dana" and chat.persona.owner_id == "dana@import"
    owner = [m for _, m in chat.events if m.from_me]
    assert [m.text for m in owner] == ["Sure, will do"] and owner[0].sender == "dana@import"
    assert chat.events[0][0] == datetime.fromisoformat("2018-06-23T01:55:00+02:00").timestamp()
    again = convert(_parse("android_en_gb.txt"), "dana", "Alice Smith", tz="Europe/Berlin")
    assert [m.id for _, m in again.events] == [m.id for _, m in chat.events]
    assert len({m.id for _, m in chat.events}) == len(chat.events)
    group = convert(_parse("ios_en_gb_group.txt"), "dana", "Team Lunch")
    assert group.is_group and group.chat_id == "team-lunch@g.us"
    msgs = [m for _, m in group.events]
    assert all(m.is_group and m.group_title == "Team Lunch" and m.participants == 3 for m in msgs)
    assert [m.mentions for m in msgs if m.mentions] == [("dana@import",)]
    with pytest.raises(
        ExportError, match=r"--owner 'Zed' is not a participant .*Alice Smith, Dana"
    ):
        convert(_parse("android_en_gb.txt"), "Zed", "x")
    with pytest.raises(ExportError, match="--tz: unknown time zone"):
        convert(_parse("android_en_gb.txt"), "Dana", "x", tz="Mars/Olympus")


def test_phone_number_authors_become_whatsapp_ids() -> None:
    parsed = parse_export(
        "23/06/2018, 01:55 - +49 151 1234567: hi\n23/06/2018, 01:56 - Dana: hey\n"
    )
    chat = convert(parsed, "dana", "x")
    assert chat.chat_id == "491511234567@s.whatsapp.net"


def test_zip_exports(tmp_path: Path) -> None:
    ios = tmp_path / "WhatsApp Chat - Team Lunch.zip"
    with zipfile.ZipFile(ios, "w") as zf:
        zf.writestr("_chat.txt", (DATA / "ios_en_gb_group.txt").read_bytes())
        zf.writestr("00000012-PHOTO-2018-06-23-13-58-40.jpg", b"\xff\xd8")
    text, title = read_export(ios)
    assert title == "Team Lunch" and text.startswith("\u200e[23/06/2018")
    assert import_export(ios, "dana").chat_id == "team-lunch@g.us"
    android = tmp_path / "WhatsApp Chat with Alice Smith.zip"
    with zipfile.ZipFile(android, "w") as zf:
        zf.writestr("WhatsApp Chat with Alice Smith.txt", (DATA / "android_en_gb.txt").read_bytes())
    assert read_export(android)[1] == "Alice Smith"
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("photo.jpg", b"")
    with pytest.raises(ExportError, match="holds no .txt chat"):
        read_export(empty)


def test_import_then_replay_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "alice.jsonl"
    code = main(
        [
            "import-export",
            str(DATA / "android_en_gb.txt"),
            "--owner",
            "dana",
            "-o",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert {
        k: summary[k] for k in ("messages", "participants", "system_skipped", "media", "format")
    } == {
        "messages": 5,
        "participants": ["Alice Smith", "Dana"],
        "system_skipped": 1,
        "media": 1,
        "format": "DD/MM/YYYY, HH:MM -",
    }
    assert len(read_recording(out).items) == 5
    assert main(["replay", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["events"] == 5 and report["summary"]["compared"] is False
    # Alice's first messages are answered (after the 10 min max_wait), the urgent one next day too.
    assert [s["time"] for s in report["sent"]][0].startswith("2018-06-23 02:0")
    assert len(report["sent"]) == 2
    assert main(["replay", str(out), "--set", "cooldown=30h", "--json"]) == 0
    what_if = json.loads(capsys.readouterr().out)
    assert (
        what_if["summary"]["lost"] == 0
    )  # the urgent message breaks through a longer cooldown too
    assert (
        main(["replay", str(out), "--set", "urgent_keywords=[]", "--set", "cooldown=48h", "--json"])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["summary"]["lost"] == 1
    before = out.read_bytes()
    assert main(["import-export", str(DATA / "broken.txt"), "--owner", "dana", "-o", str(out)]) == 2
    assert "exists; add --force" in capsys.readouterr().err
    args = ["import-export", str(DATA / "broken.txt"), "--owner", "dana", "-o", str(out), "--force"]
    assert main(args) == 2
    assert "broken.txt:1" in capsys.readouterr().err
    assert out.read_bytes() == before  # a failed import leaves the old output as it was
    assert not out.with_name(out.name + ".part").exists()


def test_output_never_overwrites_the_input_and_needs_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    chat = tmp_path / "chat.jsonl"  # a default output (.jsonl next to it) that is the input
    chat.write_bytes((DATA / "android_en_gb.txt").read_bytes())
    assert main(["import-export", str(chat), "--owner", "dana"]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["import-export", str(chat), "--owner", "dana", "-o", str(chat), "--force"]) == 2
    assert "is the input" in capsys.readouterr().err
    link = tmp_path / "link.jsonl"
    link.symlink_to(chat)
    assert main(["import-export", str(chat), "--owner", "dana", "-o", str(link), "--force"]) == 2
    assert chat.read_bytes() == (DATA / "android_en_gb.txt").read_bytes()
    out = tmp_path / "out.jsonl"
    assert main(["import-export", str(chat), "--owner", "dana", "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["messages"] == 5 and summary["media_by_kind"] == {"image": 1}
    assert summary["first"].startswith("2018-06-23") and summary["date_order"]
    assert main(["import-export", str(chat), "--owner", "dana", "-o", str(out)]) == 2
    assert "--force" in capsys.readouterr().err
    assert main(["import-export", str(chat), "--owner", "dana", "-o", str(out), "--force"]) == 0
    assert len(read_recording(out).items) == 5
