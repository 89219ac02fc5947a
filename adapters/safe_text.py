"""Text that always encodes as UTF-8: lone surrogates shown as visible escapes.

A lone surrogate reaches wapa's strings two ways: a file name that is not UTF-8 (Python keeps
its bytes as U+DC80-U+DCFF, "surrogateescape") and JSON input such as a recording (`"\\ud800"`
is valid JSON). Written out as it is, the first gives invalid UTF-8 (on a stdout with the
surrogateescape handler) and the second an exception. Outputs for people and programs (`wapa
simulate --json`, `--report`, `--junit`, `wapa replay`) pass through `utf8_safe`: an escaped
byte becomes `\\xff`, any other lone surrogate `\\ud800`; all other text is unchanged. In JSON
text (`json=True`) the backslash is itself escaped, so the result is still valid JSON whose
string holds those visible characters.
"""

from __future__ import annotations

import re

_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code - 0xDC00:02x}" if 0xDC80 <= code <= 0xDCFF else f"\\u{code:04x}"


def _escape_json(m: re.Match[str]) -> str:
    return "\\" + _escape(m)


def utf8_safe(text: str, *, json: bool = False) -> str:
    """`text` with every lone surrogate as a visible escape: it always encodes as UTF-8.
    `json`: `text` is JSON (from `json.dumps(..., ensure_ascii=False)`); the escapes' own
    backslashes are escaped."""
    if not _SURROGATE.search(text):
        return text
    return _SURROGATE.sub(_escape_json if json else _escape, text)
