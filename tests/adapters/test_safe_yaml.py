"""Hostile YAML and JSON cost bounded time and memory, and are refused with file:line.

Before: a 328-byte alias bomb printed 312 MB from `wapa simulate` and hung `wapa run
--config`; 5,000 nested brackets were a RecursionError traceback; a 5,000-digit integer was
a ValueError traceback (scenarios, --config, recordings).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import yaml
from wapa.adapters import safe_yaml
from wapa.adapters.recording import Recorder, RecordingError, read_recording
from wapa.adapters.safe_yaml import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    JSONLimitError,
    SafeYAMLError,
    YAMLFileError,
    _c_bounded,
    load_json,
    load_yaml,
    load_yaml_file,
)
from wapa.config import ConfigError, read_config_file
from wapa.core.policy import Persona, Policy
from wapa.sim.scenario import ScenarioError, load_text

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{x}: &{x} [{','.join([f'*{p}'] * 9)}]"
            for p, x in zip("abcdefgh", "bcdefghi", strict=True)
        ),
        "name: *i",
    ]
)
DEEP = "name: " + "[" * 5000 + "]" * 5000
BIG_INT = "name: x\nseed: " + "9" * 5000


@pytest.fixture(autouse=True, params=["libyaml", "pure"])
def parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs on both paths: libyaml's C parser (its limits checked on the event
    stream) and PyYAML's pure-Python one (checked while composing)."""
    if request.param == "pure":
        monkeypatch.setattr(safe_yaml, "USE_LIBYAML", False)
        assert _c_bounded(yaml.SafeLoader) is None
    else:
        monkeypatch.setattr(safe_yaml, "USE_LIBYAML", True)
        if not yaml.__with_libyaml__:
            pytest.skip("PyYAML without libyaml")
        assert _c_bounded(yaml.SafeLoader) is not None
    return str(request.param)


def test_both_paths_give_the_same_scenarios_line_for_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every scenario file: the same data, the same line numbers (kept by the scenario loader's
    constructors), with libyaml and without."""
    from wapa.sim import scenario

    def lines(value: object) -> object:
        if isinstance(value, dict):
            return (
                getattr(value, "line", None),
                getattr(value, "key_lines", None),
                getattr(value, "bool_words", None),
                {k: lines(v) for k, v in value.items()},
            )
        if isinstance(value, list):
            return (
                getattr(value, "line", None),
                getattr(value, "item_lines", None),
                [lines(v) for v in value],
            )
        return value

    files = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
    assert files
    for f in files:
        text = f.read_text()
        monkeypatch.setattr(safe_yaml, "USE_LIBYAML", True)
        fast = load_yaml(text, f.name, loader=scenario._Loader)
        monkeypatch.setattr(safe_yaml, "USE_LIBYAML", False)
        pure = load_yaml(text, f.name, loader=scenario._Loader)
        assert lines(fast) == lines(pure), f.name


def _refused(text: str, match: str) -> SafeYAMLError:
    began = time.process_time()  # CPU time: a hang guard, not a speed test (a loaded machine)
    with pytest.raises(SafeYAMLError, match=match) as info:
        load_yaml(text, "f.yaml")
    assert time.process_time() - began < 2.0
    assert len(str(info.value)) < 300  # never the expanded value
    return info.value


def test_alias_bomb_is_refused_at_its_line() -> None:
    err = _refused(LAUGHS, r"^f\.yaml:\d+: aliases expand to more than 10,000 values")
    assert err.line is not None and 2 <= err.line <= 10


def test_deep_nesting_is_refused_not_a_recursion_error() -> None:
    _refused(DEEP, r"^f\.yaml:1: nested more than 64 levels deep")
    _refused("a:\n" + "".join("  " * i + "- \n" for i in range(200)), "levels deep")
    _refused("{a: " * 100 + "1" + "}" * 100, "levels deep")


def test_depth_counts_what_aliases_bring_in() -> None:
    half = "[" * 40 + "1" + "]" * 40
    text = f"a: &a {half}\nb: {'[' * 40}*a{']' * 40}\n"
    _refused(text, r"^f\.yaml:2: nested more than 64 levels deep \(through \*a\)")


def test_huge_integers_are_refused_with_their_line() -> None:
    _refused(BIG_INT, r"^f\.yaml:2: integer of 5,000 digits \(at most 100\)")
    _refused("x: 0x" + "f" * 500, "integer of")
    assert load_yaml("x: " + "9" * 90)["x"] == int("9" * 90)


def test_recursive_aliases_are_refused() -> None:
    _refused("a: &a [*a]", r"^f\.yaml:1: recursive alias \*a")
    _refused("a: &a {k: *a}", "recursive alias")


def test_size_is_bounded() -> None:
    with pytest.raises(SafeYAMLError, match=r"^f\.yaml: too large"):
        load_yaml("x: 1\n" * 100, "f.yaml", max_bytes=100)


def test_ordinary_yaml_still_loads_aliases_and_merges_included() -> None:
    data = load_yaml("base: &b {x: 1, y: [1, 2]}\nother:\n  <<: *b\n  z: 3\nlist: [*b, *b]\n")
    assert data["other"] == {"x": 1, "y": [1, 2], "z": 3}
    assert data["list"] == [{"x": 1, "y": [1, 2]}] * 2
    alias_budget = (
        "v: &v ["
        + ",".join(["1"] * 99)
        + "]\n"
        + "\n".join(f"k{i}: *v" for i in range(MAX_ALIAS_NODES // 100 - 1))
    )
    assert len(load_yaml(alias_budget)) == MAX_ALIAS_NODES // 100
    nested = "x: " + "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert load_yaml(nested)["x"] is not None


def test_bad_yaml_names_file_and_line() -> None:
    with pytest.raises(SafeYAMLError, match=r"^f\.yaml:3: bad YAML: "):
        load_yaml("a: 1\nb: [\n", "f.yaml")


def test_only_safe_loaders() -> None:
    with pytest.raises(TypeError):
        load_yaml("a: 1", loader=yaml.UnsafeLoader)  # type: ignore[arg-type]
    with pytest.raises(SafeYAMLError, match="bad YAML"):
        load_yaml("x: !!python/object/apply:os.system [echo hi]", "f.yaml")


# ------------------------------------------------------------------ where it is used


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (LAUGHS, r"aliases expand"),
        (DEEP, r":1: nested more than 64 levels deep"),
        (BIG_INT, r":2: integer of 5,000 digits"),
    ],
    ids=["alias-bomb", "deep", "big-int"],
)
def test_scenarios(text: str, match: str) -> None:
    with pytest.raises(ScenarioError, match=r"^s\.yaml:\d+: ") as info:
        load_text(text, "s.yaml")
    assert len(str(info.value)) < 300
    assert info.match(match)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (LAUGHS.replace("name: *i", "WAPA_ALIASES: *i"), "aliases expand"),
        ("WAPA_ALIASES: " + "[" * 5000 + "]" * 5000, "levels deep"),
        ("WAPA_SEED: " + "9" * 5000, "integer of 5,000 digits"),
    ],
    ids=["alias-bomb", "deep", "big-int"],
)
def test_config_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "wapa.yaml"
    path.write_text(text)
    began = time.process_time()  # CPU time: a hang guard, not a speed test (a loaded machine)
    with pytest.raises(ConfigError, match=r"^--config: ") as info:
        read_config_file(str(path))
    assert time.process_time() - began < 2.0
    assert str(path) in str(info.value) and len(str(info.value)) < 400


def test_config_file_bomb_alone(tmp_path: Path) -> None:
    path = tmp_path / "wapa.yaml"
    path.write_text(LAUGHS.replace("name: *i", "WAPA_ALIASES: *i"))
    with pytest.raises(ConfigError, match=rf"^--config: {path}:\d+: aliases expand"):
        read_config_file(str(path))


# ------------------------------------------------------------------ JSON (recordings)


def test_json_limits() -> None:
    assert load_json('{"a": [1, 2.5, "x"]}') == {"a": [1, 2.5, "x"]}
    for text, match in [
        ("[" * 5000 + "]" * 5000, "levels deep"),
        ("[" * 70 + "]" * 70, "nested more than 64 levels deep"),
        ('{"t": ' + "9" * 5000 + "}", "integer of 5,000 digits"),
        ('"' + "x" * 2_000_000 + '"', "line of 2,000,002 characters"),
    ]:
        with pytest.raises(JSONLimitError, match=match):
            load_json(text)
    with pytest.raises(json.JSONDecodeError):
        load_json("{")


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ('{"t": 1, "dir": "in", "item": ' + "[" * 5000 + "]" * 5000 + "}", "levels deep"),
        ('{"t": 1' + "0" * 5000 + ', "dir": "in", "item": {}}', "integer of 5,001 digits"),
    ],
    ids=["deep", "big-int"],
)
def test_recordings(tmp_path: Path, line: str, match: str) -> None:
    path = tmp_path / "rec.jsonl"
    Recorder(path, Policy(), Persona(), 0, start=1_700_000_000.0).close()
    with path.open("a") as f:
        f.write(line + "\n")
    with pytest.raises(RecordingError, match=rf"rec\.jsonl:2: refused: .*{match}"):
        read_recording(path)


def test_a_yaml_file_is_read_no_further_than_its_bound(tmp_path: Path) -> None:
    f = tmp_path / "settings.yaml"
    f.write_text("a: 1\n" + "#" * 100 + "\n")
    assert load_yaml_file(str(f), max_bytes=200) == {"a": 1}
    with pytest.raises(SafeYAMLError, match=r"too large \(51 bytes; at most 50\)"):
        load_yaml_file(str(f), max_bytes=50)  # 51 characters read, not the whole file
    f.write_bytes(b"a: \xff\n")
    with pytest.raises(YAMLFileError, match=rf"^{re.escape(str(f))} is not UTF-8 text"):
        load_yaml_file(str(f))
    with pytest.raises(YAMLFileError, match=r"^cannot read .*missing\.yaml: "):
        load_yaml_file(str(tmp_path / "missing.yaml"))
