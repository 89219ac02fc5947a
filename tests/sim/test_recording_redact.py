"""Redaction: placeholders keep what the rules look at, and a redacted recording replays to the
same decisions as the original."""

from __future__ import annotations

from pathlib import Path

from wapa.adapters.recording import Recorder, read_recording
from wapa.adapters.redact import Redactor
from wapa.core import Message, Persona, Policy
from wapa.core.urgency import emphasised
from wapa.sim.engine import Simulation
from wapa.sim.fake_model import FakeModel
from wapa.sim.replay import replay

T0 = 1_700_000_000.0
ALICE = "4915112345678@s.whatsapp.net"
PERSONA = Persona(owner_id="4917700000001@s.whatsapp.net", owner_name="Dana")


def _redactor(salt: bytes = b"salt", **policy: object) -> Redactor:
    return Redactor(Policy.from_mapping(policy), PERSONA, salt)


def test_text_keeps_length_case_punctuation_and_keywords() -> None:
    r = _redactor()
    text = "PLEASE call me, it is URGENT!!! Meeting at 5pm 🙂\nאני מחכה"
    out = r.text(text)
    assert len(out) == len(text)
    assert "call me" in out and "URGENT!!!" in out and "🙂" in out and "\n" in out
    assert "PLEASE" not in out and "Meeting" not in out and "מחכה" not in out
    assert [c.isupper() for c in out] == [c.isupper() for c in text]
    assert [c.isspace() or not c.isalnum() for c in out] == [
        c.isspace() or not c.isalnum() for c in text
    ]
    assert emphasised(out) == emphasised(text)
    shouting = "WHERE ARE YOU ANSWER NOW"
    assert emphasised(r.text(shouting)) and r.text(shouting).isupper()


def test_same_word_same_placeholder_case_insensitively_other_salt_other_placeholder() -> None:
    r = _redactor()
    assert r.text("Alice") == r.text("Alice") and r.text("alice") == r.text("Alice").lower()
    assert r.text("Alice") != _redactor(b"other").text("Alice")
    assert r.text("hello Alice") == r.text("hello") + " " + r.text("Alice")


def test_phone_numbers_map_the_same_in_ids_and_text_and_servers_are_kept() -> None:
    r = _redactor()
    jid = r.id(ALICE)
    assert jid.endswith("@s.whatsapp.net") and jid != ALICE and len(jid) == len(ALICE)
    assert jid.split("@")[0].isdigit()
    assert r.text(f"ping @{ALICE.split('@')[0]}") == f"{r.text('ping')} @{jid.split('@')[0]}"
    assert r.text(f"mute {ALICE}").endswith(jid)
    assert r.id("status@broadcast") == "status@broadcast"
    assert r.id("120363025246125486@g.us").endswith("@g.us")


def test_owner_name_mentions_and_policy_aliases_still_address_the_owner() -> None:
    r = _redactor(aliases=[r"\bboss\b"])
    persona = r.persona_mapping()
    assert (
        persona["owner_name"] != "Dana"
        and r.text("@Dana hi") == f"@{persona['owner_name']} {r.text('hi')}"
    )
    assert r.text("hey boss, lunch?").startswith(f"{r.text('hey')} boss,")
    assert r.policy_mapping()["aliases"] == [r"\bboss\b"]


def test_owner_commands_in_his_own_chat_stay_commands() -> None:
    r = _redactor()
    own = {
        "type": "Message",
        "chat": PERSONA.owner_id,
        "sender": PERSONA.owner_id,
        "id": "c",
        "from_me": True,
    }
    assert r.item({**own, "text": "pause"})["text"] == "pause"
    muted = r.item({**own, "text": "mute Alice Smith 2h"})["text"]
    assert muted == f"mute {r.text('Alice Smith')} 2h"
    assert (
        r.item({"type": "Command", "name": "mute", "arg": "Alice 30m"})["arg"]
        == f"{r.text('Alice')} 30m"
    )
    note = r.item({**own, "text": "buy milk"})["text"]
    assert note != "buy milk" and len(note) == 8


def test_no_placeholder_invents_a_keyword_or_a_command() -> None:
    r = _redactor(urgent_keywords=["x"])
    for word in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n"):
        assert r.text(word) != "x"
    words = [f"w{i}" for i in range(3000)] + ["pause", "resume"]
    assert not {r.word(w).casefold() for w in words} & {"pause", "resume", "status", "help", "mute"}


def test_model_replies_are_stored_as_the_core_would_send_them() -> None:
    r = _redactor()
    gen = {
        "type": "Generate",
        "request_id": "r1",
        "chat": ALICE,
        "messages": [{"role": "system", "content": "You are the assistant of Dana."}],
    }
    r.item(gen)
    out = r.item(
        {"type": "Generated", "request_id": "r1", "text": "As an AI, I can help. Dana is out."}
    )
    assert out["text"] == r.text("Dana is out.")  # the opener is gone, as the core drops it
    r.item(gen)
    assert r.item({"type": "Generated", "request_id": "r1", "text": "N/A"})["text"] == ""


def test_a_quoted_promise_is_judged_against_what_the_contact_wrote() -> None:
    # The core exempts only quotes of the contact's own words (core/hygiene.py `heard`): the
    # redactor judges a recorded reply the same way, so it never keeps a text the core refused.
    r = _redactor()
    reply = 'You wrote "Dana will pay you on Monday", I will pass it on.'

    def generate(heard: str) -> dict[str, object]:
        return {
            "type": "Generate",
            "request_id": "r1",
            "chat": ALICE,
            "messages": [
                {"role": "system", "content": "You are the assistant of Dana."},
                {"role": "user", "content": heard},
            ],
        }

    r.item(generate("hi, is she around?"))
    assert r.item({"type": "Generated", "request_id": "r1", "text": reply})["text"] == ""
    r.item(generate("Dana will pay you on Monday, she said so"))
    assert r.item({"type": "Generated", "request_id": "r1", "text": reply})["text"] == r.text(reply)


def _simulate(path: Path, redact: bool) -> None:
    policy = Policy.from_mapping({"aliases": [r"\bboss\b"]})
    rec = Recorder(path, policy, PERSONA, 11, redact=redact, start=T0)
    sim = Simulation(
        policy=policy,
        persona=PERSONA,
        seed=11,
        start=T0,
        on_record=rec.record,
        model=FakeModel(
            seed=11, replies=["As an AI model I cannot. Dana will call back.", "[reply]"]
        ),
    )
    bob, grp = "4916000000002@s.whatsapp.net", "120363000000001@g.us"
    script = [
        (0, Message(ALICE, ALICE, "m1", "Hi Dana, are you coming tonight?", sender_name="Alice")),
        (20, Message(ALICE, ALICE, "m2", "let me know", sender_name="Alice")),
        (900, Message(bob, bob, "m3", "EMERGENCY call me now!!!", sender_name="Bob")),
        (
            1000,
            Message(
                grp,
                bob,
                "m4",
                "lunch anyone?",
                is_group=True,
                group_title="Team",
                participants=6,
                sender_name="Bob",
            ),
        ),
        (
            1100,
            Message(
                grp,
                ALICE,
                "m5",
                "hey boss are you in?",
                is_group=True,
                group_title="Team",
                participants=6,
                sender_name="Alice",
            ),
        ),
        (
            1200,
            Message(
                grp,
                bob,
                "m6",
                "@Dana also you?",
                is_group=True,
                group_title="Team",
                participants=6,
                mentions=(PERSONA.owner_id,),
            ),
        ),
        (4000, Message(ALICE, ALICE, "m7", "still there? URGENT", sender_name="Alice")),
        (9000, Message(ALICE, PERSONA.owner_id, "m8", "Sorry, just saw this", from_me=True)),
        (9100, Message(PERSONA.owner_id, PERSONA.owner_id, "c1", "mute Bob 2h", from_me=True)),
        (9200, Message(bob, bob, "m9", "hello?", sender_name="Bob")),
        (9300, Message(PERSONA.owner_id, PERSONA.owner_id, "c2", "status", from_me=True)),
    ]
    for dt, m in script:
        sim.add_message(T0 + dt, m)
    sim.run()
    rec.close()


def test_a_redacted_recording_replays_to_the_same_decisions(tmp_path: Path) -> None:
    plain, red = tmp_path / "plain.jsonl", tmp_path / "red.jsonl"
    _simulate(plain, redact=False)
    _simulate(red, redact=True)
    raw = red.read_text()
    for secret in ("Alice", "tonight", "4915112345678", "Sorry, just saw", "Team", "Dana"):
        assert secret not in raw
    a, b = read_recording(plain), read_recording(red)
    assert b.header.redacted
    codes = lambda rec: [(i.t, i.obj.code) for i in rec.items if type(i.obj).__name__ == "Decision"]  # noqa: E731
    assert codes(a) == codes(b)
    assert {
        "rejected",
        "breakthrough",
        "group_not_addressed",
        "owner_takeover",
        "muted",
        "command",
    } <= {c for _, c in codes(a)}
    for recording in (a, b):
        report = replay(recording)
        assert report.divergences == [], report.divergences[:2]
    assert [round(s.t, 6) for s in replay(a).sent] == [round(s.t, 6) for s in replay(b).sent]


def test_redacted_ids_never_collide() -> None:
    from wapa.adapters.redact import Redactor
    from wapa.core import Persona, Policy

    r = Redactor(Policy(), Persona(), salt=b"fixed")
    originals = [*"abcdefghijklmnopqrstuvwxyz", "é", *(f"{c}@s.whatsapp.net" for c in "abcdefgh")]
    mapped = [r.id(v) for v in originals]
    assert len(set(mapped)) == len(originals)
    assert [r.id(v) for v in originals] == mapped  # stable within a recording


def test_transcripts_and_descriptions_are_redacted_like_messages() -> None:
    """A voice note's transcript is the contact's words: it is redacted as his message is."""
    from wapa.adapters.codec import encode
    from wapa.core.events import MediaText

    r = _redactor()
    event = MediaText("4915112345678@s.whatsapp.net", "m1", "Meeting Gilad at the Hilton, urgent")
    out = r.item(encode(event))
    assert "Hilton" not in out["text"] and "Meeting" not in out["text"]
    assert "urgent" in out["text"]  # urgency keywords are kept, as in messages
    assert "4915112345678" not in out["chat"]
