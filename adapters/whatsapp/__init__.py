"""WhatsApp through neonize (whatsmeow): event mapping, connection lifecycle, the transport.

Importing this package sets `NEONIZE_BOT_TAG=off` unless it is already set: neonize 0.5.2
otherwise tags every one-to-one message as sent by a business bot (`<bot biz_bot="1"/>`),
which is not how the owner's own account should look. It must happen before neonize's Go
library loads, so import `adapters.whatsapp` before anything else imports neonize.
"""

import os

os.environ.setdefault("NEONIZE_BOT_TAG", "off")
