"""Type-check the whole tree with mypy, as the installed `wapa` package sees it.

The project installs its top-level folders under one namespace (`app/` is `wapa`, `core/` is
`wapa.core`, ...: setuptools `package-dir`). mypy cannot follow the import hook an editable
install uses for that mapping, so this builds the same layout from symbolic links in a
folder (build/typecheck, ignored by git) and checks it there; errors are reported with the repository's own paths.

    python -m tests.support.typecheck          # prints mypy's report; exit status 0 when clean
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBPACKAGES = ("core", "adapters", "sim", "bench")


LINKS = ROOT / "build" / "typecheck"  # a stable place: mypy's cache keys on the paths


def link_tree(into: Path) -> Path:
    """`into`/wapa (app/'s files plus the subpackages) and `into`/tests, as symbolic links,
    made afresh."""
    if into.exists():
        shutil.rmtree(into)
    pkg = into / "wapa"
    pkg.mkdir(parents=True)
    for entry in (ROOT / "app").iterdir():
        if entry.name != "__pycache__":
            (pkg / entry.name).symlink_to(entry)
    for name in SUBPACKAGES:
        (pkg / name).symlink_to(ROOT / name)
    (into / "tests").symlink_to(ROOT / "tests")
    return pkg


def run_mypy() -> tuple[str, int]:
    """mypy's report (with repository paths) and its exit status."""
    from mypy import api

    link_tree(LINKS / "tree")
    cache = LINKS / "mypy_cache"
    args = ["--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(cache)]
    cwd = os.getcwd()
    os.chdir(LINKS / "tree")
    try:
        out, err, status = api.run([*args, "wapa", "tests"])
    finally:
        os.chdir(cwd)
    report = (out + err).replace("wapa/commands/", "app/commands/")
    for name in SUBPACKAGES:
        report = report.replace(f"wapa/{name}/", f"{name}/")
    report = "\n".join(
        line.replace("wapa/", "app/", 1) if line.startswith("wapa/") else line
        for line in report.splitlines()
    )
    return report, status


def main() -> int:
    report, status = run_mypy()
    print(report)
    return status


if __name__ == "__main__":
    sys.exit(main())
