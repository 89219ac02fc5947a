"""The console transport: the real runner with a terminal instead of WhatsApp.

Input, one message per line on stdin:

    alice: hello                 direct chat "alice", from the contact alice (new name, new chat)
    team/bob: @Gilad ping        group "team", sender bob; @<owner name> or @owner mentions the owner
    me: I'll take this           the owner writes in the last chat used
    me@alice: on my way          the owner writes in chat alice
    alice: [voice]               media: [voice] [image] [video] ... optionally followed by a caption
    /status                      an owner command (pause, resume, status, mute CHAT [DURATION], ...)
    /help                        the console's input syntax and the owner commands (shown here)
    # a comment                  ignored, as are blank lines

Output on stdout, one line each: `[send] alice: <full text>` (newlines shown as \\n, every
other control character as \\x1b, \\u202e, ...: contacts and the model never drive the terminal),
`[typing] alice on`, `[read] alice 2`, `[notice] ...`, `[decision] alice scheduled: ...`,
`[lifecycle] connected: ...`, `[error] ...` for a line that cannot be read or an unknown
/command. A `sent` decision is shown after its `[send]` line (the core decides before the
transport sends; a reader expects the message first). The JSON logs do not mix with these
lines: when stderr is a terminal, `wapa run --transport console` writes them to a file beside
the database (`console_log_path`: `data/wapa.log` for `data/wapa.db`), named in the start
banner; when stderr is redirected (a pipe, a file, a test), they go there, as `wapa run` does. Like whatsmeow, a send (or notice) never comes back as an IsFromMe message: only the
owner's `me:` lines do.
`ConsoleTransport(..., echo=True)` brings back the old echo of every send, from this very
device (`Message.own_device`), a fault whatsmeow never has: to watch the core's echo rule.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
import sys
import threading
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO, cast

from wapa.adapters.filemodes import open_append, private_dir
from wapa.adapters.transport import OnLifecycle, OnMessage, SendError
from wapa.core import Decision, Message, Reason
from wapa.core.events import MEDIA_KINDS

_LINE = re.compile(r"^(?P<who>[^:/]+?)(?:/(?P<sender>[^:]+?))?\s*:\s?(?P<text>.*)$", re.DOTALL)
_MEDIA = re.compile(r"^\[(?P<kind>[a-z]+)\]\s*(?P<caption>.*)$", re.DOTALL)
_JOINERS = ("\u200c", "\u200d")  # format characters that emoji and scripts need
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The owner commands the core knows, and how many words each takes (core/machine.py).
COMMANDS = {
    "pause": "",
    "resume": "",
    "status": "",
    "digest": "",
    "mute": "CHAT [DURATION]",
    "unmute": "CHAT",
    "profile": "CHAT NAME",
}
HELP = (
    "console input, one message per line:",
    "  alice: hello              a contact writes in the direct chat alice",
    "  team/bob: @owner ping     bob writes in the group team (@owner mentions you)",
    "  me: on my way             you write in the last chat used (me@alice: in alice)",
    "  alice: [voice] caption    media: [voice] [image] [video] ..., with an optional caption",
    "  # a comment               ignored, as are blank lines",
    "owner commands: /pause  /resume  /status  /digest  /mute CHAT [DURATION]  /unmute CHAT",
    "                /profile CHAT NAME  /help",
)


def _printable(ch: str) -> str:
    """A control character (C0, C1, bidi and other format characters, line separators, lone
    surrogates) as a visible escape; any other character as itself."""
    if ch in _NAMED:
        return _NAMED[ch]
    if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") and ch not in _JOINERS:
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return ch


def console_log_path(db: str) -> Path:
    """Where the console's JSON logs go: beside the database, `data/wapa.log` for the default
    `data/wapa.db`."""
    return Path(db).with_suffix(".log")


def open_console_log(db: str, stderr: TextIO | None = None) -> tuple[TextIO | None, str]:
    """The console's log file, opened for appending (0600, its folder 0700), and its path, when
    `stderr` (default sys.stderr) is a terminal; (None, "") when stderr is redirected (the
    logs go where it was sent) or the file cannot be opened (a database URL, a read-only
    folder): logs then stay on stderr."""
    stream = stderr or sys.stderr
    try:
        terminal = stream.isatty()
    except (OSError, ValueError):
        terminal = False
    if not terminal or not db or db == ":memory:" or "://" in db or db.startswith("file:"):
        return None, ""
    path = console_log_path(db)
    try:
        private_dir(path.parent)
        return cast(TextIO, open_append(path)), str(path)
    except OSError:
        return None, ""


def safe(text: str) -> str:
    """`text` with every control character escaped: safe to print on a terminal."""
    if text.isprintable():
        return text
    return "".join(_printable(ch) for ch in text)


class ConsoleInputError(ValueError):
    pass


class ConsoleTransport:
    name = "console"

    def __init__(
        self,
        owner_id: str,
        owner_name: str,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        on_eof: Callable[[], None] | None = None,
        echo: bool = False,
        log_file: str = "",
    ) -> None:
        self.owner_id, self.owner_name = owner_id, owner_name
        self.log_file = log_file  # where the JSON logs go, for the banner ("" = stderr)
        self._held: dict[str, list[str]] = {}  # chat -> decision lines waiting for its [send]
        self.echo = echo  # the injected echo of every send (whatsmeow never echoes)
        self._stdin = stdin
        self._stdout = stdout or sys.stdout
        self._on_eof = on_eof
        self._groups: set[str] = set()
        self._last_chat = ""
        self._in = 0
        self._out = 0
        # Message ids are unique across runs: the store remembers the ids it has seen, and a
        # second run numbering from 1 again would have its messages dropped as redeliveries.
        self._run = secrets.token_hex(3)
        self._on_message: OnMessage | None = None
        self._lines: asyncio.Queue[str | None] = asyncio.Queue()
        self._pump: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopped = False
        self._owner_mention = re.compile(
            rf"(?<!\w)@(?:owner|{re.escape(owner_name)})(?!\w)", re.IGNORECASE
        )

    # ------------------------------------------------------------------ output

    def show(self, line: str) -> None:
        try:
            self._stdout.write(safe(line) + "\n")
            self._stdout.flush()
        except (OSError, ValueError):  # stdout closed: nothing to show it on
            pass

    def show_decision(self, d: Decision) -> None:
        """A decision line; `sent` (and whatever follows it in that chat) waits for the
        `[send]` line it announces."""
        line = f"[decision] {d.chat or '-'} {d.code}: {d.detail}"
        held = self._held.get(d.chat)
        if held is not None:
            held.append(line)
        elif d.code == Reason.SENT:
            self._held[d.chat] = [line]
        else:
            self.show(line)

    def _release(self, chat: str | None = None) -> None:
        """Show the decisions held for `chat` (every chat when None)."""
        for key in [chat] if chat is not None else list(self._held):
            for line in self._held.pop(key, []):
                self.show(line)

    def banner(self) -> str:
        logs = f"JSON logs go to {self.log_file}" if self.log_file else "JSON logs go to stderr"
        return (
            f"[console] wapa console: type a message like 'alice: hello', /help for the syntax; "
            f"{logs}"
        )

    # ------------------------------------------------------------------ input

    def parse(self, line: str) -> Message | None:
        """One input line to a message; None for blank lines and comments."""
        line = line.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            return None
        self._in += 1
        mid = f"in-{self._run}-{self._in}"
        if line.startswith("/"):
            text = line[1:].strip()
            if not text:
                raise ConsoleInputError("an owner command needs a name, like /status (/help)")
            name, _, arg = text.partition(" ")
            name = name.casefold()
            if name == "help":
                for row in HELP:
                    self.show(row)
                return None
            if name not in COMMANDS:
                raise ConsoleInputError(f"unknown command /{name}: try /help")
            if bool(COMMANDS[name]) != bool(arg.strip()):
                usage = f"/{name} {COMMANDS[name]}".rstrip()
                raise ConsoleInputError(f"usage: {usage} (/help)")
            return Message(self.owner_id, self.owner_id, mid, text, from_me=True)
        m = _LINE.match(line)
        if not m:
            raise ConsoleInputError(
                "expected 'NAME: text', 'GROUP/NAME: text', 'me: text', 'me@CHAT: text' or /command"
            )
        who, sender, text = m["who"].strip(), (m["sender"] or "").strip(), m["text"]
        media = ""
        mm = _MEDIA.match(text)
        if mm and mm["kind"] in MEDIA_KINDS:
            media, text = mm["kind"], mm["caption"]
        if who == "me" or who.startswith("me@"):
            if sender:
                raise ConsoleInputError("the owner writes as 'me: text' or 'me@CHAT: text'")
            chat = who[3:].strip() if who.startswith("me@") else self._last_chat
            if not chat:
                raise ConsoleInputError("no chat used yet: write 'me@CHAT: text'")
            self._last_chat = chat
            return Message(
                chat,
                self.owner_id,
                mid,
                text,
                from_me=True,
                is_group=chat in self._groups,
                media=media,
            )
        if not who or (sender == "" and m["sender"] is not None):
            raise ConsoleInputError("a group line needs both names: 'GROUP/NAME: text'")
        self._last_chat = who
        if sender:
            self._groups.add(who)
            mentions = (self.owner_id,) if self._owner_mention.search(text) else ()
            return Message(
                who,
                sender,
                mid,
                text,
                is_group=True,
                sender_name=sender,
                group_title=who,
                mentions=mentions,
                media=media,
            )
        return Message(who, who, mid, text, sender_name=who, media=media)

    async def start(self, on_message: OnMessage, on_lifecycle: OnLifecycle) -> None:
        self._on_message = on_message
        loop = asyncio.get_running_loop()
        stream = self._stdin or io.TextIOWrapper(
            sys.stdin.buffer, encoding="utf-8", errors="replace"
        )

        def read() -> None:  # a daemon thread: works for ttys, pipes and files alike
            try:
                for line in stream:
                    loop.call_soon_threadsafe(self._lines.put_nowait, line)
            except (OSError, ValueError):
                pass
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(self._lines.put_nowait, None)

        threading.Thread(target=read, name="wapa-console-stdin", daemon=True).start()
        self._pump = asyncio.create_task(self._pump_lines())
        self.show(self.banner())
        on_lifecycle("connected", "console")

    async def _pump_lines(self) -> None:
        while True:
            line = await self._lines.get()
            if line is None:
                if self._on_eof is not None:
                    self._on_eof()
                return
            if self._stopped:
                continue
            try:
                msg = self.parse(line)
            except ConsoleInputError as exc:
                self.show(f"[error] {exc}")
                continue
            if msg is not None and self._on_message is not None:
                await self._on_message(msg)

    # ------------------------------------------------------------------ effects

    async def mark_read(self, chat: str, message_ids: Sequence[str], sender: str) -> None:
        self.show(f"[read] {chat} {len(message_ids)}")

    async def typing(self, chat: str, on: bool) -> None:
        self.show(f"[typing] {chat} {'on' if on else 'off'}")

    async def send(self, chat: str, text: str, quote_id: str = "") -> str:
        if self._stopped:
            self._release(chat)
            raise SendError("console transport stopped")
        self._out += 1
        mid = f"out-{self._run}-{self._out}"
        quote = f" (quoting {quote_id})" if quote_id else ""
        self.show(f"[send] {chat}{quote}: {text}")
        self._release(chat)
        self._echo(
            Message(
                chat,
                self.owner_id,
                mid,
                text,
                from_me=True,
                is_group=chat in self._groups,
                own_device=True,
            )
        )
        return mid

    async def notify_owner(self, text: str) -> None:
        # A digest has several lines: each shown on its own, indented under "[notice]" (every
        # line still escaped), so none can pass for a line of another kind.
        first, *rest = text.split("\n")
        self.show(f"[notice] {first}")
        for line in rest:
            self.show(f"         {line}")
        self._out += 1
        self._echo(
            Message(
                self.owner_id,
                self.owner_id,
                f"out-{self._run}-{self._out}",
                text,
                from_me=True,
                own_device=True,
            )
        )

    def _echo(self, msg: Message) -> None:
        """The injected echo (only with `echo`): our own message back as IsFromMe, a moment
        later. whatsmeow never does this."""
        on_message = self._on_message
        if not self.echo or on_message is None or self._stopped:
            return

        async def deliver() -> None:  # a task needs a coroutine; OnMessage promises an awaitable
            await on_message(msg)

        task = asyncio.get_running_loop().create_task(deliver())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def can_send(self) -> bool:
        return not self._stopped

    async def stop(self) -> None:
        self._stopped = True
        self._release()
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pump
            self._pump = None
