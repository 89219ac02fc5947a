"""Imports the WhatsApp adapter never uses, put off to keep `wapa run`'s memory down.

Importing neonize costs about 53 MB of resident memory (docs/bench.md, "idle_rss_mb"): its
Go library, the protobuf descriptors, and about 580 Python modules, most of them for link
previews and media helpers wapa does not call. Many are bound by name at import by the very
modules wapa needs (`neonize.aioze.client` does `from PIL import Image`, `from linkpreview
import link_preview`, `neonize.utils` binds `phonenumbers`), so they load and stay. The rest
need not run until used:

- `defer_package_init`: a package is registered (`__path__`, `__spec__`: its submodules
  import as usual) without running its `__init__`, which runs, once and under a lock, the
  first time one of its own names is asked for (PEP 562 `__getattr__`). Nothing is replaced
  or lost: the same code runs later, or never. `DEFERRED` lists the packages (neonize 0.5.2
  and what it imports) whose `__init__` pulls in more than wapa uses, each with what it is
  for. neonize's own `__init__` imports the *synchronous* client (with `multiprocessing`) only
  to re-export it; wapa uses `neonize.aioze.client`. `neonize.aioze.client` needs only
  `requests.exceptions` (so `requests`' `__init__`, which imports its whole API and
  `charset_normalizer`'s detection tables, waits) and binds `magic` and `segno` without using
  them at import. `magic`'s `__init__` runs `ldconfig` to find libmagic. Together about
  6.9 MB of the idle runner's resident memory (docs/bench.md).
- `skip_httpx_cli`: httpx's `__init__` imports its command-line client (`httpx._main`) when
  `click` is installed (a dependency of `x-wr-timezone`, so always here), which imports
  `click` and, in a development install, `pygments` before it fails on the missing `rich`;
  httpx then falls back to a `main()` that only prints how to install `httpx[cli]`. This
  makes the fallback happen at once. wapa never calls `httpx.main`; the `httpx` command
  (another process) is unaffected. About 1.3 MB with pygments, 0.9 MB without.

A package deferred here changes only *when* its import-time work happens: requests' warning
filters and its logger's NullHandler, python-magic's search for libmagic (a missing libmagic
is reported at first use instead of at start). Each call is a no-op when the module was
already imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import types
from typing import Any

NEONIZE = "neonize"
HTTPX = "httpx"
# Packages whose __init__ imports more than wapa uses, deferred (see the module's docstring).
DEFERRED = (
    NEONIZE,  # the sync client, with multiprocessing
    "neonize.ext.interactive_message",  # every builder; neonize.aioze.client needs only `base`
    "segno",  # QR codes: `wapa pair` only
    "magic",  # libmagic, found by running ldconfig at import: neonize's media upload only
    "requests",  # neonize's link previews and binary download; wapa uses httpx
    "charset_normalizer",  # requests' guess of a response's encoding
    "soupsieve",  # BeautifulSoup's CSS selectors: link previews
)


def skip_httpx_cli() -> bool:
    """Make httpx's optional import of its CLI fail at once (None in sys.modules raises
    ModuleNotFoundError, which httpx catches). True when it was set here."""
    if HTTPX in sys.modules or f"{HTTPX}._main" in sys.modules:
        return False
    sys.modules[f"{HTTPX}._main"] = None  # type: ignore[assignment]
    return True


def defer_neonize_init() -> bool:
    """Register the `neonize` package with its `__init__` deferred to the first use of one of
    its own names. True when it was deferred here; False when neonize was already imported
    or cannot be found (then the ordinary import reports it). The same for the other packages
    in `DEFERRED`."""
    return [defer_package_init(name) for name in DEFERRED][0]


def defer_package_init(name: str) -> bool:
    """Register package `name` (its parents imported as usual) without running its
    `__init__`, which runs on the first use of one of its own names. True when deferred."""
    if name in sys.modules:
        return False
    try:  # a subpackage's parents are imported to find it: neonize may be missing or broken
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.loader is None or spec.submodule_search_locations is None:
        return False
    if name in sys.modules:  # find_spec imported the parents, which may have imported it
        return False
    package = importlib.util.module_from_spec(spec)  # __path__, __spec__, __file__: not run
    package.__dict__["__getattr__"] = _first_use(package, spec)
    sys.modules[name] = package
    parent, _, child = name.rpartition(".")
    if parent:  # as the import system does: the parent package names its submodule
        setattr(sys.modules[parent], child, package)
    return True


def _first_use(package: types.ModuleType, spec: Any) -> Any:
    """The package's `__getattr__` (PEP 562, called only for a name it does not have): a
    submodule is imported as the import system would; any other name runs `__init__` once
    (under a lock: Go's callback threads may be the first to ask) and is looked up again."""
    lock = threading.RLock()
    state = {"ran": False, "running": False}

    def __getattr__(name: str) -> Any:
        if name.startswith("__") and name.endswith("__") and name not in ("__version__", "__all__"):
            raise AttributeError(name)  # probes (__wrapped__, __path__ hooks...) change nothing
        if importlib.util.find_spec(f"{package.__name__}.{name}") is not None:
            return importlib.import_module(f"{package.__name__}.{name}")
        with lock:
            if not state["ran"] and not state["running"]:
                state["running"] = True
                try:
                    spec.loader.exec_module(package)
                    state["ran"] = True
                finally:
                    state["running"] = False
        try:
            return package.__dict__[name]
        except KeyError:
            raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}") from None

    return __getattr__
