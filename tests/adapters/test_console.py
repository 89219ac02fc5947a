"""adapters/console.py: the line grammar, output lines, echoes like WhatsApp."""

from __future__ import annotations

import asyncio
import io

import pytest
from wapa.adapters.console import ConsoleInputError, ConsoleTransport
from wapa.core import Decision, Message


def make() -> tuple[ConsoleTransport, io.StringIO]:
    out = io.StringIO()
    return ConsoleTransport("me-id", "Gilad", stdin=io.StringIO(""), stdout=out), out


def parsed(t: ConsoleTransport, line: str) -> Message:
    """`t.parse(line)`, which must give a message (not None: a blank line or a comment)."""
    m = t.parse(line)
    assert m is not None, line
    return m


def test_line_grammar() -> None:
    t, _ = make()
    m = parsed(t, "alice: hello: there")
    assert (m.chat, m.sender, m.text, m.from_me, m.is_group) == (
        "alice",
        "alice",
        "hello: there",
        False,
        False,
    )
    g = parsed(t, "team/bob: @Gilad ping")
    assert (g.chat, g.sender, g.is_group, g.group_title, g.mentions) == (
        "team",
        "bob",
        True,
        "team",
        ("me-id",),
    )
    assert parsed(t, "team/carol: @owner look").mentions == ("me-id",)
    assert parsed(t, "team/carol: no mention").mentions == ()
    o = parsed(t, "me: I'll take this")
    assert (o.chat, o.from_me, o.is_group) == ("team", True, True)
    o = parsed(t, "me@alice: on my way")
    assert (o.chat, o.from_me, o.is_group) == ("alice", True, False)
    c = parsed(t, "/mute alice 2h")
    assert (c.chat, c.text, c.from_me) == ("me-id", "mute alice 2h", True)
    v = parsed(t, "alice: [voice]")
    assert (v.media, v.text) == ("voice", "")
    assert parsed(t, "alice: [image] look").media == "image"
    assert parsed(t, "alice: [unknown] x").text == "[unknown] x"
    assert t.parse("   ") is None and t.parse("# note") is None
    ids = {parsed(t, f"x: {i}").id for i in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("line", ["no colon here", "me/bob: x", "/", "team/: x"])
def test_unreadable_lines_are_refused(line: str) -> None:
    t, _ = make()
    with pytest.raises(ConsoleInputError):
        t.parse(line)


def test_me_needs_a_chat_first() -> None:
    t, _ = make()
    with pytest.raises(ConsoleInputError, match="me@CHAT"):
        t.parse("me: hi")


async def _effects(t: ConsoleTransport) -> tuple[list[Message], list[str], str]:
    inbox: list[Message] = []

    async def on_message(m: Message) -> None:
        inbox.append(m)

    out = t._stdout
    await t.start(on_message, lambda kind, detail: None)
    await t.typing("alice", True)
    await t.mark_read("alice", ["in-1", "in-2"], "alice")
    mid = await t.send("alice", "line one\nline two", "")
    await t.notify_owner("Paused.")
    t.show_decision(Decision(0.0, "alice", "scheduled", "reply due at X"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert isinstance(out, io.StringIO)
    lines = out.getvalue().splitlines()
    assert lines == [
        t.banner(),  # how to type, and where the JSON logs go
        "[typing] alice on",
        "[read] alice 2",
        "[send] alice: line one\\nline two",
        "[notice] Paused.",
        "[decision] alice scheduled: reply due at X",
    ]
    await t.stop()
    assert not t.can_send()
    return inbox, lines, mid


async def test_effects_print_and_sends_never_come_back() -> None:
    """Like whatsmeow: a linked device's own sends are not delivered back to it."""
    t, _ = make()
    inbox, _, _ = await _effects(t)
    assert inbox == []


async def test_the_old_echo_is_an_option_from_this_device() -> None:
    out = io.StringIO()
    t = ConsoleTransport("me-id", "Gilad", stdin=io.StringIO(""), stdout=out, echo=True)
    inbox, _, mid = await _effects(t)
    echo = [m for m in inbox if m.chat == "alice"][0]
    assert echo.from_me and echo.own_device and echo.id == mid
    assert echo.text == "line one\nline two"
    notice = [m for m in inbox if m.chat == "me-id"][0]
    assert notice.text == "Paused." and notice.own_device


async def test_a_digest_shows_as_lines_under_its_notice() -> None:
    t, _ = make()
    out = t._stdout
    assert isinstance(out, io.StringIO)
    await t.notify_owner("Digest since 09:00: 1 chat.\nUrgent:\n- alice \x1b[2J")
    assert out.getvalue().splitlines() == [
        "[notice] Digest since 09:00: 1 chat.",
        "         Urgent:",
        "         - alice \\x1b[2J",
    ]


async def test_stdin_lines_reach_the_runner_and_eof_is_reported() -> None:
    got: list[Message] = []
    eof = asyncio.Event()

    async def on_message(m: Message) -> None:
        got.append(m)

    out = io.StringIO()
    t = ConsoleTransport(
        "me-id", "Gilad", stdin=io.StringIO("alice: hi\nbroken\n"), stdout=out, on_eof=eof.set
    )
    await t.start(on_message, lambda kind, detail: None)
    await asyncio.wait_for(eof.wait(), 5)
    assert [m.text for m in got] == ["hi"]
    assert "[error] expected 'NAME: text'" in out.getvalue()
    await t.stop()


def test_message_ids_are_unique_across_runs() -> None:
    """A second run on the same store must not reuse the first run's ids (they would be
    dropped as redeliveries)."""
    first, _ = make()
    second, _ = make()
    a, b = first.parse("alice: hello"), second.parse("alice: hello")
    assert a is not None and b is not None and a.id != b.id
    assert first.parse("alice: again") is not None


def test_control_characters_from_contacts_and_the_model_are_escaped() -> None:
    """An ANSI escape, a bell, a bidi override or a lone surrogate in a name or a reply never
    reaches the terminal as such; emoji joiners stay."""
    t, out = make()
    t.show("[send] \x1b[31mred\x07: a\u202eb\ud800 c\td\r\n👩\u200d💻 ok")
    assert out.getvalue() == "[send] \\x1b[31mred\\x07: a\\u202eb\\ud800 c\\td\\r\\n👩\u200d💻 ok\n"
    t.show_decision(Decision(0.0, "\x1b]0;title\x07", "scheduled", "x\x9by"))
    assert out.getvalue().splitlines()[-1] == "[decision] \\x1b]0;title\\x07 scheduled: x\\x9by"


def test_unknown_commands_are_refused_and_help_shows_the_console_syntax() -> None:
    t, out = make()
    with pytest.raises(ConsoleInputError, match=r"unknown command /bogus: try /help"):
        t.parse("/bogus")
    with pytest.raises(ConsoleInputError, match=r"usage: /mute CHAT \[DURATION\]"):
        t.parse("/mute")
    with pytest.raises(ConsoleInputError, match=r"usage: /pause"):
        t.parse("/pause now")
    assert t.parse("/help") is None  # answered here, not sent to the assistant
    shown = out.getvalue()
    assert "/mute CHAT [DURATION]" in shown and "me@alice:" in shown and "team/bob:" in shown
    assert parsed(t, "/Status").text == "Status"
    assert parsed(t, "/unmute alice").text == "unmute alice"
