"""JUnit XML and GitHub annotations from `wapa simulate` / `wapa fuzz`.

The XML is validated against the common JUnit shape (the one Jenkins' xUnit plugin publishes as
junit-10.xsd, and which pytest's own test suite checks `--junitxml` against): the schema below is
that shape restated, and pytest's own `--junitxml` output must validate against it too, so it is
not a schema made to fit us. Then a real consumer (junitparser) reads it back.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from wapa.cli import main
from wapa.sim.junit import (
    classname,
    failure_line,
    fuzz_junit,
    github_annotations,
    simulate_junit,
    workflow_error,
)
from wapa.sim.suite import run_paths

xmlschema = pytest.importorskip("xmlschema")
junitparser = pytest.importorskip("junitparser")

# The common JUnit report shape (Jenkins xUnit junit-10 / Maven Surefire), restated.
JUNIT_XSD = """<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <xs:simpleType name="Seconds">
    <xs:restriction base="xs:string">
      <xs:pattern value="(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\\.[0-9]*)?"/>
    </xs:restriction>
  </xs:simpleType>
  <xs:complexType name="Outcome" mixed="true">
    <xs:attribute name="type" type="xs:string"/>
    <xs:attribute name="message" type="xs:string"/>
  </xs:complexType>
  <xs:element name="failure" type="Outcome"/>
  <xs:element name="error" type="Outcome"/>
  <xs:element name="skipped" type="Outcome"/>
  <xs:element name="system-out" type="xs:string"/>
  <xs:element name="system-err" type="xs:string"/>
  <xs:element name="property">
    <xs:complexType>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="value" type="xs:string" use="required"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="properties">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="property" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
  <xs:element name="testcase">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element ref="skipped"/>
        <xs:element ref="error"/>
        <xs:element ref="failure"/>
        <xs:element ref="system-out"/>
        <xs:element ref="system-err"/>
      </xs:choice>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="classname" type="xs:string"/>
      <xs:attribute name="time" type="xs:string"/>
      <xs:attribute name="group" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuite">
    <xs:complexType>
      <xs:choice minOccurs="0" maxOccurs="unbounded">
        <xs:element ref="testsuite"/>
        <xs:element ref="properties"/>
        <xs:element ref="testcase"/>
        <xs:element ref="system-out"/>
        <xs:element ref="system-err"/>
      </xs:choice>
      <xs:attribute name="name" type="xs:string" use="required"/>
      <xs:attribute name="tests" type="xs:string" use="required"/>
      <xs:attribute name="failures" type="xs:string" use="required"/>
      <xs:attribute name="errors" type="xs:string" use="required"/>
      <xs:attribute name="skipped" type="xs:string"/>
      <xs:attribute name="time" type="Seconds"/>
      <xs:attribute name="timestamp" type="xs:string"/>
      <xs:attribute name="hostname" type="xs:string"/>
      <xs:attribute name="id" type="xs:string"/>
      <xs:attribute name="package" type="xs:string"/>
      <xs:attribute name="group" type="xs:string"/>
      <xs:attribute name="file" type="xs:string"/>
      <xs:attribute name="log" type="xs:string"/>
      <xs:attribute name="url" type="xs:string"/>
    </xs:complexType>
  </xs:element>
  <xs:element name="testsuites">
    <xs:complexType>
      <xs:sequence>
        <xs:element ref="testsuite" minOccurs="0" maxOccurs="unbounded"/>
      </xs:sequence>
      <xs:attribute name="name" type="xs:string"/>
      <xs:attribute name="time" type="Seconds"/>
      <xs:attribute name="tests" type="xs:string"/>
      <xs:attribute name="failures" type="xs:string"/>
      <xs:attribute name="errors" type="xs:string"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

PASSING = """name: Direct chat gets one delayed reply
chats:
  alice: {}
script:
  - {at: 0s, chat: alice, text: "Hi! Are you free tomorrow?"}
expect:
  - {reply: alice, at: 2m}
"""
FAILING = """name: Expects <two> replies & fails
chats:
  alice: {}
script:
  - {at: 0s, chat: alice, text: "hello"}
expect:
  - {no_reply: alice}
  - {replies: alice, count: 2}
"""
BROKEN = """name: Broken
chats:
  alice: {}
script:
  - {at: 0s, chat: alice, txet: "typo"}
"""


@pytest.fixture(scope="module")
def schema() -> object:
    return xmlschema.XMLSchema(JUNIT_XSD)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "scn"
    (d / "sub").mkdir(parents=True)
    (d / "ok.yaml").write_text(PASSING)
    (d / "sub" / "bad.yaml").write_text(FAILING)
    (d / "broken.yaml").write_text(BROKEN)
    return d


def test_the_schema_accepts_pytests_own_junitxml(tmp_path: Path, schema: object) -> None:
    """The restated schema is the common one: pytest's own report validates against it."""
    (tmp_path / "test_x.py").write_text(
        "import pytest\ndef test_ok(): pass\ndef test_bad(): assert 1 == 2\n"
        "@pytest.fixture\ndef boom(): raise RuntimeError('x')\ndef test_err(boom): pass\n"
        "@pytest.mark.skip\ndef test_skip(): pass\n"
    )
    out = tmp_path / "pytest.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={out}"],
        cwd=tmp_path,
        capture_output=True,
        check=False,
    )
    schema.validate(str(out))  # type: ignore[attr-defined]


def test_simulate_junit_is_valid_and_parses(folder: Path, tmp_path: Path, schema: object) -> None:
    out = tmp_path / "r.xml"
    assert main(["simulate", str(folder), "--junit", str(out)]) == 1
    schema.validate(str(out))  # type: ignore[attr-defined]

    xml = junitparser.JUnitXml.fromfile(str(out))
    suites = list(xml) if isinstance(xml, junitparser.JUnitXml) else [xml]
    assert len(suites) == 1
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors) == (3, 1, 1)
    cases = {c.name: c for c in suite}
    assert set(cases) == {
        "Direct chat gets one delayed reply",
        "Expects <two> replies & fails",
        "broken",
    }
    ok = cases["Direct chat gets one delayed reply"]
    assert ok.is_passed and ok.classname.endswith("scn.ok") and float(ok.time) >= 0
    bad = cases["Expects <two> replies & fails"]
    assert bad.classname.endswith("scn.sub.bad")
    [failure] = bad.result
    assert isinstance(failure, junitparser.Failure)
    assert failure.message.startswith("expect[0] (line 7): expected no reply")
    assert failure.message.endswith("(and 1 more)")
    assert "last decision" in failure.text  # the same explanation as the text output
    broken = cases["broken"]
    [error] = broken.result
    assert isinstance(error, junitparser.Error)
    assert f"{folder / 'broken.yaml'}:5:" in error.message  # file:line
    props = {p.name: p.value for p in suite.properties()}
    assert props[f"seed {folder / 'ok.yaml'}"] == "0"


def test_seed_override_is_a_property(folder: Path) -> None:
    outcomes = run_paths([folder / "ok.yaml"], seed=5)
    xml = simulate_junit(outcomes, seed=5)
    assert '<property name="seed" value="5" />' in xml
    assert "--seed 5" in xml  # the rerun command in system-out


def test_fuzz_junit_is_valid(tmp_path: Path, schema: object) -> None:
    runs = [
        {"seed": 1, "ok": True, "seconds": 0.5, "replay": "wapa fuzz --seed 1", "violations": []},
        {
            "seed": 2,
            "ok": False,
            "seconds": 0.25,
            "replay": "wapa fuzz --seed 2",
            "violations": [{"t": 1767603600.0, "chat": "c", "rule": "r", "detail": "d"}],
        },
    ]
    out = tmp_path / "f.xml"
    out.write_text(fuzz_junit(runs, {"chats": "3", "days": "1"}))
    schema.validate(str(out))  # type: ignore[attr-defined]
    suite = next(iter(junitparser.JUnitXml.fromfile(str(out))))
    assert (suite.tests, suite.failures) == (2, 1)


def test_names_and_lines() -> None:
    assert classname("scenarios/sub/x.yaml") == "scenarios.sub.x"
    assert failure_line("expect[3] (line 17): expected ...") == 17
    assert failure_line("simulation stopped: ...") is None


def test_github_annotations_point_at_the_expectation(folder: Path) -> None:
    lines = github_annotations(run_paths([folder]))
    bad = [x for x in lines if "bad.yaml" in x]
    assert len(bad) == 2 and "line=7," in bad[0] and "line=8," in bad[1]
    assert all(x.startswith("::error file=") for x in lines)
    assert all("\n" not in x for x in lines)  # multi-line explanations are escaped
    [broken] = [x for x in lines if "broken.yaml" in x]
    assert ",line=5," in broken
    assert (
        workflow_error("a\nb%", "f,1.yaml", 2, "t:1")
        == "::error file=f%2C1.yaml,line=2,title=t%3A1::a%0Ab%25"
    )


def test_annotations_on_when_github_actions_sets_the_variable(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    main(["simulate", str(folder / "sub")])
    assert "::error file=" in capsys.readouterr().out
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    main(["simulate", str(folder / "sub")])
    assert "::error" not in capsys.readouterr().out
