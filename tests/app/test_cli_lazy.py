"""`wapa` starts lazily: `--help` imports no command module, `wapa COMMAND` only its own, and
the help lines that stand in for the others are the ones their modules register."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys

import pytest
from wapa import cli


def _registered_help(module_name: str) -> dict[str, str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    importlib.import_module(f"wapa.commands.{module_name}").register(sub)
    return {a.dest: str(a.help) for a in sub._choices_actions}


@pytest.mark.parametrize("command", sorted(cli.command_modules()))
def test_each_help_line_is_the_one_its_module_registers(command: str) -> None:
    module = cli.command_modules()[command]
    assert _registered_help(module) == {command: cli.HELP[command]}


def test_every_help_line_has_its_module() -> None:
    assert set(cli.HELP) == set(cli.command_modules())


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_help_imports_no_command_and_nothing_heavy() -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom wapa.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n    main(['--help'])"
    )
    assert not {m for m in loaded if m.startswith("wapa.commands.")}
    assert not {"asyncio", "ssl", "wapa.core", "wapa.bench.cli", "yaml"} & loaded


def test_a_command_imports_only_its_own_module() -> None:
    loaded = _modules_after(
        "import contextlib, io\nfrom wapa.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        main(['healthcheck', '--help'])\n    except SystemExit:\n        pass"
    )
    assert {m for m in loaded if m.startswith("wapa.commands.")} == {"wapa.commands.healthcheck"}


def test_the_full_parser_still_knows_every_option() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["fuzz", "--chats", "3", "--days", "1"])
    assert args.chats == 3 and callable(args.func)


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for command in cli.HELP:
        assert command in out
    with pytest.raises(SystemExit):
        cli.main(["simulat"])  # a typo: argparse lists the choices
    assert "invalid choice" in capsys.readouterr().err
