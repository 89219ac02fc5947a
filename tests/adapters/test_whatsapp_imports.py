"""adapters/whatsapp/imports.py: neonize's package `__init__` deferred to its first use, httpx's
CLI never imported. Each case runs in a fresh interpreter: the test process has long imported
both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str) -> Any:
    """`code` in a fresh interpreter; it prints one JSON value, returned here."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_transport_imports_neither_the_sync_client_nor_the_httpx_cli() -> None:
    got = _run(
        "import json, sys\n"
        "import wapa.adapters.whatsapp.client\n"
        "import httpx\n"
        "print(json.dumps({m: sys.modules.get(m) is not None for m in ('neonize.client',"
        " 'multiprocessing',"
        " 'click', 'httpx._main', 'neonize.aioze.client')} | {'main': httpx.main.__module__}))"
    )
    assert got == {
        "neonize.client": False,
        "multiprocessing": False,
        "click": False,
        "httpx._main": False,
        "neonize.aioze.client": True,
        "main": "httpx",  # httpx's own fallback, defined in httpx/__init__.py
    }


def test_neonizes_own_names_still_work_and_run_its_init_once() -> None:
    got = _run(
        "import json, sys\n"
        "import wapa.adapters.whatsapp.client\n"
        "import neonize\n"
        "before = 'neonize.client' in sys.modules\n"
        "version = neonize.__version__\n"
        "from neonize.client import NewClient\n"
        "first = sys.modules['neonize.client']\n"
        "same = neonize.NewClient is NewClient and neonize.Event is not None\n"
        "print(json.dumps({'before': before, 'version': version, 'same': same,"
        " 'once': sys.modules['neonize.client'] is first, 'all': sorted(neonize.__all__)}))"
    )
    assert got == {
        "before": False,
        "version": "0.5.2",
        "same": True,
        "once": True,
        "all": ["Event", "FFmpeg", "NewClient", "TemporaryFile", "extract_text"],
    }


def test_submodules_unknown_names_and_probes() -> None:
    got = _run(
        "import json, sys\n"
        "import wapa.adapters.whatsapp\n"
        "import neonize\n"
        "from neonize import utils\n"  # `from package import submodule` asks the package first
        "out = {'utils': utils.__name__, 'proto': neonize.proto.__name__}\n"
        "out['probe'] = hasattr(neonize, '__wrapped__')\n"
        "out['init_after_probes'] = 'neonize.client' in sys.modules\n"
        "try:\n"
        "    neonize.no_such_name\n"
        "except AttributeError as exc:\n"
        "    out['error'] = str(exc)\n"
        "print(json.dumps(out))"
    )
    assert got == {
        "utils": "neonize.utils",
        "proto": "neonize.proto",
        "probe": False,
        "init_after_probes": False,
        "error": "module 'neonize' has no attribute 'no_such_name'",
    }


def test_nothing_changes_when_they_were_imported_first() -> None:
    got = _run(
        "import json, sys\n"
        "import httpx, neonize\n"
        "from wapa.adapters.whatsapp.imports import defer_neonize_init, skip_httpx_cli\n"
        "print(json.dumps({'deferred': defer_neonize_init(), 'skipped': skip_httpx_cli(),"
        " 'sync_client': 'neonize.client' in sys.modules,"
        " 'click': 'click' in sys.modules}))"  # httpx's attempt at its CLI imported click
    )
    assert got == {"deferred": False, "skipped": False, "sync_client": True, "click": True}


def test_concurrent_first_uses_run_init_once() -> None:
    """Go's callback threads may be first to ask: every thread gets the name, one init."""
    got = _run(
        "import json, sys, threading\n"
        "import wapa.adapters.whatsapp\n"
        "import neonize\n"
        "seen = []\n"
        "start = threading.Barrier(8)\n"
        "def use():\n"
        "    start.wait()\n"
        "    seen.append((neonize.NewClient, sys.modules['neonize.client']))\n"
        "threads = [threading.Thread(target=use) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "print(json.dumps({'n': len(seen), 'distinct': len(set(seen))}))"
    )
    assert got == {"n": 8, "distinct": 1}


def test_interactive_message_builders_load_on_first_use() -> None:
    """`neonize.aioze.client` needs only `base`; the builders come when one is asked for,
    the same classes the package's own __init__ re-exports."""
    got = _run(
        "import json, sys\n"
        "import wapa.adapters.whatsapp.client\n"
        "import neonize.ext.interactive_message as im\n"
        "before = sorted(m for m in sys.modules if m.startswith(im.__name__))\n"
        "from neonize.ext.interactive_message.button import ButtonMessage\n"
        "print(json.dumps({'before': before, 'same': im.ButtonMessage is ButtonMessage,"
        " 'parent': sys.modules['neonize.ext'].interactive_message is im,"
        " 'base': im.CustomInteractiveMessage.__module__}))"
    )
    assert got == {
        "before": [
            "neonize.ext.interactive_message",
            "neonize.ext.interactive_message.base",
        ],
        "same": True,
        "parent": True,
        "base": "neonize.ext.interactive_message.base",
    }


def test_third_party_packages_wait_for_their_first_use_and_then_work() -> None:
    """segno, magic, requests, charset_normalizer, soupsieve: registered, their __init__ not
    run after the transport is imported; each works as usual when first used (the real
    package runs then: QR codes, libmagic, requests' API, encoding detection, CSS selectors)."""
    got = _run(
        "import json, sys\n"
        "import wapa.adapters.whatsapp.client\n"
        "names = ('segno', 'magic', 'requests', 'charset_normalizer', 'soupsieve')\n"
        # executing a module's code puts __builtins__ in its namespace: it ran
        "out = {'ran': {n: '__builtins__' in vars(sys.modules[n]) for n in names}}\n"
        "import segno, magic, requests, charset_normalizer\n"
        "from bs4 import BeautifulSoup\n"
        "from requests.exceptions import HTTPError\n"
        "out['qr_version'] = segno.make_qr('wapa').version\n"
        "out['mime'] = magic.from_buffer(b'%PDF-1.4\\n%\\xe2\\xe3\\n', mime=True)\n"
        "out['requests'] = [requests.HTTPError is HTTPError, requests.get is requests.api.get]\n"
        "out['encoding'] = charset_normalizer.from_bytes('héllo wörld'.encode()).best().encoding\n"
        "soup = BeautifulSoup('<p class=a>x</p><p>y</p>', 'html.parser')\n"
        "out['css'] = [p.text for p in soup.select('p.a')]\n"
        "out['ran_after'] = {n: '__builtins__' in vars(sys.modules[n]) for n in names}\n"
        "print(json.dumps(out))"
    )
    assert got == {
        "ran": dict.fromkeys(
            ("segno", "magic", "requests", "charset_normalizer", "soupsieve"), False
        ),
        "qr_version": 1,
        "mime": "application/pdf",
        "requests": [True, True],
        "encoding": "utf_8",
        "css": ["x"],
        "ran_after": dict.fromkeys(
            ("segno", "magic", "requests", "charset_normalizer", "soupsieve"), True
        ),
    }


def test_without_neonize_the_package_still_imports() -> None:
    """The health code imports `adapters.whatsapp.link` on the console too: a machine
    without (a working) neonize must still get it; only the transport then fails to load."""
    got = _run(
        "import json, sys\n"
        "sys.modules['neonize'] = None\n"  # what a missing package looks like to imports
        "import wapa.adapters.whatsapp.link\n"
        "try:\n"
        "    import wapa.adapters.whatsapp.client\n"
        "    error = ''\n"
        "except ImportError as exc:\n"
        "    error = type(exc).__name__\n"
        "print(json.dumps({'link': 'wapa.adapters.whatsapp.link' in sys.modules, 'error': error}))"
    )
    assert got == {"link": True, "error": "ModuleNotFoundError"}
