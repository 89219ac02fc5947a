"""WhatsApp "Export chat" files (.txt or .zip) -> core events, for `wapa import-export`."""

from wapa.adapters.chat_export.convert import (
    ImportedChat,
    convert,
    import_export,
    participant_id,
    read_export,
)
from wapa.adapters.chat_export.parser import ExportError, ExportMessage, ParsedExport, parse_export

__all__ = [
    "ExportError",
    "ExportMessage",
    "ImportedChat",
    "ParsedExport",
    "convert",
    "import_export",
    "parse_export",
    "participant_id",
    "read_export",
]
