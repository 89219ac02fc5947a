"""Build (or remove) the optional compiled core: core/'s message-path modules compiled with
mypyc into C extension modules placed beside their .py files.

    python -m wapa.bench.build_core            # build (needs gcc, the Python headers, mypy)
    python -m wapa.bench.build_core --remove   # back to the pure-Python core
    python -m wapa.bench.build_core --status   # which core is imported

The pure-Python core stays the reference and the default: the README's install needs no
compiler, and nothing imports mypyc at run time. Python imports an extension module in
preference to the .py file of the same name, so once built, every `import wapa.core...`
(the runner, the simulator, the tests, `wapa bench`) gets the compiled modules; `wapa bench`
says which it measured (`core_compiled`). The built files are ignored by git and are not
rebuilt by themselves: after editing core/, build again or remove them, or the old compiled
code keeps running. To catch that, the build writes the hash of every core/*.py it compiled
against (`MANIFEST`); `stale()` names the sources changed since, and the test suite refuses to
run against a stale build (tests/conftest.py), as `--status` says. CI (.ci/run) builds it, runs the core's tests, the decision trace and the
scenarios against it, and removes it.

Compiled: the modules of `COMPILED` (the message path and what it calls), with `Record` and
`Decision` (core/records.py, core/decision.py): the decisions the machine makes are native
objects, built and read without a lookup by name. The others stay Python: the policy and
profile parsers and the driver run once per configuration or step and use constructs mypyc
does not compile; and the events (core/events.py) and `Policy`, though read on every
message, would refuse ill-typed fields when built, where the core judges them
(tests/support/compiled.py) and `Policy` parses them (durations such as "2m"). The decisions are the same bit for bit: the
decision-trace test replays its fuzz run against the compiled core in CI."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

COMPILED = (
    "records",
    "decision",
    "machine",
    "sends",
    "urgency",
    "context",
    "digest",
    "escalation",
    "hygiene",
    "patterns",
    "phrases",
)
GROUP = "wapa.core._native"  # the shared library every compiled module loads (one group)
MANIFEST = "_native.sources.json"  # core/*.py -> sha256 at the build, beside the modules
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX") or ".so"  # e.g. .cpython-311-x86_64-linux-gnu.so

_SETUP = """
from setuptools import setup
from mypyc.build import mypycify

setup(
    name="wapa-core-compiled",
    ext_modules=mypycify({paths!r}, opt_level="3", debug_level="0", group_name={group!r}),
    script_args=["build_ext", "--inplace"],
)
"""


def core_dir() -> Path:
    """core/ as installed (an editable install maps `wapa.core` to the repository's core/)."""
    spec = importlib.util.find_spec("wapa.core")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("build_core: the package wapa.core is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def built(core: Path) -> list[Path]:
    """The compiled modules in `core` (this interpreter's extension suffix only)."""
    names = [*COMPILED, GROUP.rsplit(".", 1)[1] + "__mypyc"]
    return [core / f"{name}{SUFFIX}" for name in names if (core / f"{name}{SUFFIX}").exists()]


def is_compiled() -> bool:
    """Whether `wapa.core.machine`, as imported in this process, is the compiled module."""
    import wapa.core.machine as machine

    return not str(machine.__file__).endswith(".py")


def _hashes(core: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(core.glob("*.py"))}


def stale(core: Path) -> list[str]:
    """The core/*.py files added, removed or changed since the compiled modules in `core` were
    built (all of them when the build left no manifest); [] when nothing is built."""
    if not built(core):
        return []
    try:
        then = json.loads((core / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return sorted(_hashes(core))
    now = _hashes(core)
    return sorted(name for name in then.keys() | now.keys() if then.get(name) != now.get(name))


def remove(core: Path) -> list[Path]:
    gone = built(core)
    for path in gone:
        path.unlink()
    (core / MANIFEST).unlink(missing_ok=True)
    return gone


def build(core: Path, verbose: bool = False) -> list[Path]:
    """Compile `COMPILED` in a scratch copy laid out as the package `wapa.core` (mypyc names
    modules by their paths), then copy the extension modules into `core`."""
    remove(core)  # a stale build must not be type-checked against, nor left half-replaced
    with tempfile.TemporaryDirectory(prefix="wapa-core-build-") as tmp:
        root = Path(tmp)
        pkg = root / "wapa" / "core"
        pkg.mkdir(parents=True)
        (root / "wapa" / "__init__.py").write_text("", encoding="utf-8")
        for source in core.glob("*.py"):
            shutil.copy2(source, pkg / source.name)
        paths = [f"wapa/core/{name}.py" for name in COMPILED]
        (root / "setup.py").write_text(_SETUP.format(paths=paths, group=GROUP), encoding="utf-8")
        run = subprocess.run(
            [sys.executable, "setup.py"],
            cwd=root,
            capture_output=not verbose,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            tail = "\n".join(((run.stdout or "") + (run.stderr or "")).splitlines()[-30:])
            raise SystemExit(f"build_core: mypyc failed (exit {run.returncode}):\n{tail}")
        made = sorted(pkg.glob(f"*{SUFFIX}"))
        for path in made:
            shutil.copy2(path, core / path.name)
        sources = _hashes(pkg)  # what was compiled: the scratch copy
    (core / MANIFEST).write_text(json.dumps(sources, sort_keys=True), encoding="utf-8")
    return built(core)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m wapa.bench.build_core", description=__doc__)
    group = p.add_mutually_exclusive_group()
    group.add_argument("--remove", action="store_true", help="remove the compiled modules")
    group.add_argument("--status", action="store_true", help="say which core is imported")
    p.add_argument("--verbose", action="store_true", help="show the compiler's output")
    args = p.parse_args(argv)
    core = core_dir()
    if args.status:
        print(f"core: {'compiled' if is_compiled() else 'pure Python'} ({core})")
        changed = stale(core)
        if changed:
            print(f"stale: changed since the build: {', '.join(changed)} (build again or --remove)")
        return 1 if changed else 0
    if args.remove:
        gone = remove(core)
        print(f"build_core: removed {len(gone)} compiled modules from {core}")
        return 0
    made = build(core, verbose=args.verbose)
    print(f"build_core: {len(made)} compiled modules in {core}: {', '.join(p.name for p in made)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
