"""Reading the paired device from a session database that neonize's own Go code created
(issue 12, defect 1: a comma in the account's push name stopped every restart)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from neonize.aioze.client import ClientFactory
from wapa.adapters.whatsapp.session import SessionError, paired_accounts

OWN = "972500000001@s.whatsapp.net"


def _go_session(path: Path, push_name: str, device: int = 12) -> None:
    """A session file as neonize leaves it: the schema made by whatsmeow's Go upgrades (through
    neonize's `GetAllDevices`), then one paired device row, as whatsmeow's `PutDevice` stores it."""
    assert ClientFactory.get_all_devices_from_db(str(path)) == []  # creates the tables
    con = sqlite3.connect(path)
    with con:
        con.execute(
            "INSERT INTO whatsmeow_device (jid, lid, registration_id, noise_key, identity_key,"
            " signed_pre_key, signed_pre_key_id, signed_pre_key_sig, adv_key, adv_details,"
            " adv_account_sig, adv_account_sig_key, adv_device_sig, platform, business_name,"
            " push_name) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                f"972500000001:{device}@s.whatsapp.net",
                f"111111111111111:{device}@lid",
                1234,
                os.urandom(32),
                os.urandom(32),
                os.urandom(32),
                1,
                os.urandom(64),
                os.urandom(32),
                b"details",
                os.urandom(64),
                os.urandom(32),
                os.urandom(64),
                "SAFARI",
                "",
                push_name,
            ),
        )
    con.close()


def test_a_comma_in_the_push_name_no_longer_stops_wapa(tmp_path: Path) -> None:
    db = tmp_path / "session.db"
    _go_session(db, "Doe, John")
    with pytest.raises(ValueError):  # neonize's own reader: why wapa could not start
        ClientFactory.get_all_devices_from_db(str(db))
    assert paired_accounts(str(db)) == [OWN]


def test_a_plain_session_reads_the_same_as_neonize(tmp_path: Path) -> None:
    db = tmp_path / "session.db"
    _go_session(db, "John")
    [device] = ClientFactory.get_all_devices_from_db(str(db))
    assert f"{device.JID.User}@{device.JID.Server}" == "972500000001:12@s.whatsapp.net"
    assert paired_accounts(str(db)) == [OWN]


def test_an_unpaired_or_missing_session_has_no_accounts(tmp_path: Path) -> None:
    db = tmp_path / "session.db"
    assert ClientFactory.get_all_devices_from_db(str(db)) == []
    assert paired_accounts(str(db)) == []
    assert paired_accounts(str(tmp_path / "missing.db")) == []
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    assert paired_accounts(str(empty)) == []  # a file with no whatsmeow tables


def test_a_file_that_is_no_database_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(SessionError, match="WAPA_SESSION_DB"):
        paired_accounts(str(bad))
