"""wapa's pure core: events in, effects out; no clock, no I/O, stdlib only."""

from wapa.core.events import (
    ChatMessage,
    Command,
    Decision,
    Effect,
    Event,
    Generate,
    Generated,
    GenerationFailed,
    MarkRead,
    Message,
    Notice,
    Reason,
    Send,
    SendConfirmed,
    SendFailed,
    Typing,
)
from wapa.core.machine import Assistant
from wapa.core.policy import Caps, Persona, Policy, PolicyError, QuietHours, parse_duration

__all__ = [
    "Assistant",
    "Caps",
    "ChatMessage",
    "Command",
    "Decision",
    "Effect",
    "Event",
    "Generate",
    "Generated",
    "GenerationFailed",
    "MarkRead",
    "Message",
    "Notice",
    "Persona",
    "Policy",
    "PolicyError",
    "QuietHours",
    "Reason",
    "Send",
    "SendConfirmed",
    "SendFailed",
    "Typing",
    "parse_duration",
]
