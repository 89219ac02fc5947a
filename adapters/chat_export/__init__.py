"""WhatsApp "Export chat" files (.txt or .zip) -> core events, for `wapa import-export`."""

from wapa.adapters.chat_export.convert import (
    ImportedChat,
    StreamedChat,
    convert,
    import_export,
    participant_id,
    read_export,
    stream_export,
)
from wapa.adapters.chat_export.parser import ExportError, ExportMessage, ParsedExport, parse_export
from wapa.adapters.chat_export.source import ExportSource, open_export

__all__ = [
    "ExportError",
    "ExportMessage",
    "ExportSource",
    "ImportedChat",
    "ParsedExport",
    "StreamedChat",
    "convert",
    "import_export",
    "open_export",
    "parse_export",
    "participant_id",
    "read_export",
    "stream_export",
]
