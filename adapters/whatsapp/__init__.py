"""WhatsApp through neonize (whatsmeow): event mapping, connection lifecycle, the transport.

Importing this package sets `NEONIZE_BOT_TAG=off` unless it is already set: neonize 0.5.2
otherwise tags every one-to-one message as sent by a business bot (`<bot biz_bot="1"/>`),
which is not how the owner's own account should look. It must happen before neonize's Go
library loads, so import `adapters.whatsapp` before anything else imports neonize.
"""

import os

os.environ.setdefault("NEONIZE_BOT_TAG", "off")


def quiet_neonize_logs() -> None:
    """neonize logs at INFO (JIDs included) and passes its logger's level to whatsmeow in Go:
    keep warnings and errors only. The runner's log redaction still applies to what is left."""
    import logging

    for name in ("neonize", "neonize.utils.log", "whatsmeow", "Whatsmeow"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # wapa sends and receives no media files: the missing-ffmpeg warning is noise.
    logging.getLogger("neonize.utils.ffmpeg").setLevel(logging.ERROR)
