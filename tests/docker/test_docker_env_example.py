""".env.example is generated from app/config.py's table and lists every variable the code reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from wapa.config import all_variables, env_example

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
# Not core/: it reads no environment (tests/core/test_core_purity.py), and its phrase tables
# have names like AI_DISCLOSURES.
SOURCE_DIRS = ("adapters", "app", "sim", "bench")
VARIABLE = re.compile(r"\b(?:WAPA|CLOUDFLARE|AI|OPENAI|NEONIZE)_[A-Z0-9_]*[A-Z0-9]\b")
REGENERATE = ".venv/bin/wapa config --env-example > .env.example"


def _listed() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names


def _exported_names(tree: ast.AST) -> set[int]:
    """The ids of the string constants of `__all__ = [...]`: Python names, not variables."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                out.update(id(c) for c in ast.walk(node) if isinstance(c, ast.Constant))
    return out


def names_in_strings(source: str) -> list[tuple[str, int]]:
    """Variable-like names in the string literals of Python source, with their lines."""
    tree = ast.parse(source)
    exported = _exported_names(tree)
    return [
        (name, node.lineno)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in exported
        for name in VARIABLE.findall(node.value)
    ]


def variables_named_in_code() -> dict[str, str]:
    """Variable-like names in string literals of the project's code -> first file:line."""
    found: dict[str, str] = {}
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            for name, line in names_in_strings(path.read_text()):
                found.setdefault(name, f"{path.relative_to(ROOT)}:{line}")
    return found


def test_env_example_is_the_generated_file() -> None:
    assert ENV_EXAMPLE.read_text() == env_example(), f"regenerate it: {REGENERATE}"


def test_every_variable_the_code_reads_is_listed() -> None:
    listed = _listed()
    missing = {n: w for n, w in variables_named_in_code().items() if n not in listed}
    assert not missing, "add these to app/config.py's table, then regenerate .env.example: " + (
        ", ".join(f"{name} ({where})" for name, where in sorted(missing.items()))
    )


def test_every_table_variable_has_a_default_line_and_a_comment() -> None:
    lines = ENV_EXAMPLE.read_text().splitlines()
    for var in all_variables():
        index = next((i for i, line in enumerate(lines) if line.startswith(f"{var.name}=")), None)
        assert index is not None, f"{var.name} missing from .env.example"
        assert lines[index - 1].startswith("# "), f"{var.name} has no comment line above it"
        value = lines[index].partition("=")[2]
        if var.secret:
            assert value == "", f"{var.name} is a secret: .env.example must leave it empty"


def test_the_scan_finds_variables_in_strings_only() -> None:
    source = (
        'x = env.get("WAPA_FOO")\nCLOUDFLARE_HOSTS = ("a",)\nraise E("OPENAI_X: y, AI_")\n'
        '__all__ = ["CLOUDFLARE_HOSTS"]\n'
    )
    assert names_in_strings(source) == [("WAPA_FOO", 1), ("OPENAI_X", 3)]
