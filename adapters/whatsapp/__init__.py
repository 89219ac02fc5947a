"""WhatsApp through neonize (whatsmeow): event mapping, connection lifecycle, the transport.

Importing this package sets `NEONIZE_BOT_TAG` to `off` unless it is set to `on` (or 1, true,
yes): neonize 0.5.2 otherwise tags every one-to-one message as sent by a business bot
(`<bot biz_bot="1"/>`), which is not how the owner's own account should look. An empty value
counts as unset, as everywhere in wapa's configuration. It must happen before neonize's Go
library loads, so import `adapters.whatsapp` before anything else imports neonize.

It also puts off imports wapa never uses (package `__init__`s of neonize and of what it
imports, run at their first use; httpx's command-line client): about 8 MB less resident
memory, see `imports.py`.
"""

import os
from collections.abc import Mapping

from wapa.adapters.whatsapp.imports import defer_neonize_init, skip_httpx_cli

BOT_TAG = "NEONIZE_BOT_TAG"


def bot_tag(env: Mapping[str, str]) -> str:
    """The value neonize gets: `on` only when asked for, else `off` (no bot badge)."""
    asked = env.get(BOT_TAG, "").strip().casefold()
    return "on" if asked in ("on", "1", "true", "yes") else "off"


os.environ[BOT_TAG] = bot_tag(os.environ)
defer_neonize_init()
skip_httpx_cli()


def quiet_neonize_logs() -> None:
    """neonize logs at INFO (JIDs included) and passes its logger's level to whatsmeow in Go:
    keep warnings and errors only. The runner's log redaction still applies to what is left."""
    import logging

    for name in ("neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # wapa sends and receives no media files: the missing-ffmpeg warning is noise.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)
