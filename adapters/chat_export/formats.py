"""Recognising the header of a WhatsApp "Export chat" line, in any of its locale formats.

A message starts with a date and a time, then `] ` (iOS, bracketed), ` - ` (Android) or `: `:

    23/06/2018, 01:55 - Name: text            6/23/18, 1:55 PM - Name: text
    [23.06.18, 01:55:12] Name: text           ‎[6/23/18, 1:55:12 PM] Name: text
    13.6.2018 klo 21.25.15 - Name: text       23/06/2018 à 01:55 - Name: text
    2018-06-23, 01:55 - Name: text            23/6/18 1:55 p. m. - Name: text
    [14:56:01, 3/18/22] Name: text            (Vietnamese iPhone: time first)
    [3/18/2565 BE, 14:56:01] Name: text       [3/18/R4, 14:56:01] Name: text (calendars)
    [١٨‏/٣‏/٢٢، ٢:٥٦:٠١ م] Name: text          (Arabic iPhone: Arabic-Indic digits, marks)
    Mar 5, 8:11 PM - Name: text               18 Mar 12:14 - Name: text (old Android)
    19:23, 28 Aug 2013 - Name: text           13. 6. 2018. 21:25:15 - Name: text

Before matching, the head of a line is normalised (`normalise`): other digit systems become
ASCII digits, the Arabic comma a comma, invisible marks (LRM, RLM, BOM, isolates) are dropped
and unusual spaces become spaces; the rest of the line is kept as written. The first header line
of a file fixes its `LineFormat`; later lines count as headers only when they have the same
shape, so a message that quotes a date is not mistaken for a new message. Whether dates are
day-first or month-first is decided from the whole file (`DateOrder`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Invisible marks exports put around lines and names: LRM/RLM/ALM, BOM, embeddings and isolates.
INVISIBLE = "\u200e\u200f\u061c\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_SPACES = "\u202f\u00a0\u2009\u2007\u3000"  # narrow no-break (iOS, before AM/PM), no-break, thin
_HEAD = 96  # characters of a line that can hold a header

_DIGIT_BLOCKS = (0x0660, 0x06F0, 0x0966, 0x09E6, 0x0E50, 0x1040, 0xFF10, 0x0AE6, 0x0A66, 0x0BE6)
_NORMAL: dict[int, str | None] = {ord(c): None for c in INVISIBLE}
_NORMAL.update({ord(c): " " for c in _SPACES})
_NORMAL.update({base + i: str(i) for base in _DIGIT_BLOCKS for i in range(10)})
_NORMAL[ord("\u060c")] = ","  # Arabic comma
_NEEDS_NORMAL = re.compile("[" + "".join(chr(c) for c in _NORMAL) + "]")

_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            "jan january januar janv janvier enero gen",
            "feb february februar fév févr février febrero",
            "mar march märz mär mars marzo",
            "apr april avr avril abril aprile",
            "may mai mayo maggio mei",
            "jun june juni juin junio giugno",
            "jul july juli juil juillet julio luglio",
            "aug august août agosto",
            "sep sept september septembre septiembre settembre",
            "oct october oktober okt octobre octubre ottobre",
            "nov november novembre noviembre",
            "dec december dezember dez déc décembre diciembre dic",
        ]
    )
    for m in names.split()
}

# Weekday names a date may start with (`Thu, 05/01/2023`, `jeu. 5 janv. 2023`): English, French,
# German, Spanish, Portuguese, Italian and Dutch, full and abbreviated; Monday is 0.
_WEEKDAYS = {
    w: i
    for i, names in enumerate(
        [
            "mon monday lun lundi lunes lunedì mo montag seg segunda ma maandag",
            "tue tues tuesday mar mardi martes martedì di dienstag ter terça dinsdag",
            "wed wednesday mer mercredi mié miércoles mercoledì mi mittwoch qua quarta wo woensdag",
            "thu thur thurs thursday jeu jeudi jue jueves gio giovedì do donnerstag qui quinta "
            "donderdag",
            "fri friday ven vendredi vie viernes venerdì fr freitag sex sexta vr vrijdag",
            "sat saturday sam samedi sáb sábado sab sabato sa samstag za zaterdag",
            "sun sunday dim dimanche dom domingo domenica so sonntag zo zondag",
        ]
    )
    for w in names.split()
}

_SP = rf"[ \t{_SPACES}]"
_AMPM = (
    r"(?P<ampm>[AaPp]\.?" + _SP + r"?[Mm]\.?|in the (?:morning|afternoon|evening)|at night|"
    r"de la (?:mañana|tarde|noche|madrugada)|del (?:mediodía)|vorm\.|nachm\.|fm|em|"
    r"ص|م|ሰዓት|午前|午後)"
)
_PRE = r"(?:(?P<pre>上午|下午|午前|午後|오전|오후|ص|م)" + _SP + r"?)?"
_TIME = (
    _PRE + r"(?P<h>\d{1,2})(?P<tsep>[:.])(?P<m>\d{2})(?:(?P=tsep)(?P<s>\d{2}))?"
    r"(?:" + _SP + r"*" + _AMPM + r"(?!\w))?"
)
_NUMDATE = (
    r"(?P<a>\d{1,4})(?P<dsep>[./-])" + _SP + r"?(?P<b>\d{1,2})(?P=dsep)" + _SP + r"?"
    r"(?P<c>\d{1,4}|[MTSHR]\d{1,2})(?P<be>" + _SP + r"?BE)?\.?"
)
_WORDDATE = (
    r"(?:(?P<mon1>[^\W\d_]{3,9})\.?" + _SP + r"(?P<d1>\d{1,2})"
    r"|(?P<d2>\d{1,2})\.?" + _SP + r"(?P<mon2>[^\W\d_]{3,9})\.?)"
    r"(?:,?" + _SP + r"(?P<y>\d{4}))?"
)
# Korean and Chinese (also Japanese) dates in words: 2023년 1월 5일, 2023年1月5日
_CJKDATE = (
    r"(?P<cy>\d{4})"
    + _SP
    + r"?[년年]"
    + _SP
    + r"?(?P<cm>\d{1,2})"
    + _SP
    + r"?[월月]"
    + _SP
    + r"?(?P<cd>\d{1,2})"
    + _SP
    + r"?[일日]"
)
_WEEKDAY = r"(?:(?P<wd>[^\W\d_]{2,9})\.?,?" + _SP + r")?"
_WORD = r"(?:(?P<word>klo|à|a las|às|um|at|alle|om|kl\.|o)" + _SP + r"+)?"
_END = (
    r"(?(open)\]"
    + _SP
    + r"?(?:-"
    + _SP
    + r")?|(?P<dash>"
    + _SP
    + r"+[-–]"
    + _SP
    + r"+|:"
    + _SP
    + r"))"
)


def _date_first(date: str, bare: bool = False) -> str:
    """A header whose date comes before its time (`bare`: maybe with nothing between them), the
    date maybe after a weekday."""
    return (
        r"^(?P<open>\[)?"
        + _SP
        + r"?"
        + _WEEKDAY
        + r"(?P<date>"
        + date
        + r")(?P<mid>,?"
        + _SP
        + r"+"
        + _WORD
        + (r"|,|)(?P<time>" if bare else r"|,)(?P<time>")
        + _TIME
        + r")"
        + _SP
        + r"?"
        + _END
        + r"(?P<rest>.*)$"
    )


def _time_first(date: str) -> str:
    """A header whose time comes before its date."""
    return (
        r"^(?P<open>\[)?"
        + _SP
        + r"?(?P<time>"
        + _TIME
        + r"),?"
        + _SP
        + r"+(?P<date>"
        + date
        + r")"
        + _SP
        + r"?"
        + _END
        + r"(?P<rest>.*)$"
    )


PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.DOTALL)
    for p in (
        # date first: 23/06/2018, 01:55 -   [6/23/18, 1:55:12 PM]   13.6.2018 klo 21.25.15 -
        _date_first(_NUMDATE),
        # time first: [14:56:01, 3/18/22]   19:23, 28 Aug 2013 -
        _time_first(_NUMDATE),
        _time_first(_WORDDATE),
        # month names: Mar 5, 8:11 PM -   18 Mar 12:14 -   5 Mar 2012, 8:11 PM -
        _date_first(_WORDDATE),
        # Korean and Chinese words: 2023년 1월 5일 오후 3:04 -   [2023年1月5日 下午3:04:05]
        _date_first(_CJKDATE, bare=True),
    )
)


def normalise(line: str) -> tuple[str, list[int] | None]:
    """(the head of the line normalised for matching, where each of its characters came from,
    or None when nothing changed)."""
    head = line[:_HEAD]
    if not _NEEDS_NORMAL.search(head):
        return line, None
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(head):
        rep = _NORMAL.get(ord(ch), ch)
        if rep is None:
            continue
        out.append(rep)
        where.append(i)
    where.append(len(head))
    return "".join(out) + line[_HEAD:], where


@dataclass(frozen=True, slots=True)
class Header:
    """A recognised header: the match on the normalised line and the original rest."""

    m: re.Match[str]
    pattern: int
    rest: str
    groups: dict[str, str | None]  # the match's named groups, read once (groupdict() is costly)

    def field(self, name: str) -> str:
        return self.groups.get(name) or ""


def match_header(line: str) -> Header | None:
    if not line:
        return None
    first = line[0]
    if not (first.isdigit() or first in "[ " or first in INVISIBLE or first.isalpha()):
        return None
    norm, where = normalise(line)
    for index, pattern in enumerate(PATTERNS):
        if index == 3 and not (norm[:1].isalnum() or norm.startswith("[")):
            continue  # a month name or a day (18 Mar 12:14 -) comes first
        m = pattern.match(norm)
        if m is None:
            continue
        groups = m.groupdict()
        mon = groups.get("mon1") or groups.get("mon2")
        if mon and mon.casefold() not in _MONTHS:
            continue
        if groups.get("wd") and groups["wd"].casefold() not in _WEEKDAYS:
            continue
        a, c = groups.get("a") or "", groups.get("c") or ""
        if c.isdigit() and (len(c) > 2 if len(a) == 4 else len(c) < 2):
            continue  # a year-first date ends with its day, any other with its year
        start = m.start("rest")
        if where is not None:
            start = where[start] if start < len(where) - 1 else start - len(where) + 1 + _HEAD
            start = min(start, len(line))
        return Header(m, index, line[start:], groups)
    return None


@dataclass(frozen=True, slots=True)
class LineFormat:
    """The shape of a file's header lines (everything but the date order)."""

    pattern: int
    bracketed: bool
    date_sep: str
    word: str  # "klo", "à", ... or ""
    comma: bool
    time_sep: str
    seconds: bool
    twelve_hour: bool
    year_first: bool
    year_digits: int
    colon: bool  # "date, time: Name: text" (some old Android exports) instead of " - "
    calendar: str  # "", "buddhist", "japanese"
    weekday: bool = False  # the date starts with the weekday's name

    @classmethod
    def of(cls, h: Header) -> LineFormat:
        a, c = h.field("a"), h.field("c")
        return cls(
            pattern=h.pattern,
            bracketed=bool(h.field("open")),
            date_sep=h.field("dsep") or " ",
            word=h.field("word").casefold(),
            comma="," in h.field("mid"),
            time_sep=h.field("tsep"),
            seconds=bool(h.field("s")),
            twelve_hour=bool(h.field("ampm") or h.field("pre")),
            year_first=len(a) == 4 or bool(h.field("cy")),
            year_digits=4
            if len(a) == 4 or h.field("cy")
            else len(c)
            if c[:1].isdigit()
            else len(h.field("y")),
            colon=h.field("dash").startswith(":"),
            calendar="buddhist" if h.field("be") else "japanese" if c[:1].isalpha() else "",
            weekday=bool(h.field("wd")),
        )

    def matches(self, h: Header) -> bool:
        """The header has this format's shape (the fields `of` would give, read directly: this
        runs on every line)."""
        if h.pattern != self.pattern:
            return False
        g = h.groups
        # a header may drop its seconds, AM/PM word or year only where this format also allows it
        return (
            bool(g.get("open")) == self.bracketed
            and (g.get("dsep") or " ") == self.date_sep
            and (g.get("tsep") or "") == self.time_sep
            and (g.get("dash") or "").startswith(":") == self.colon
            and (len(g.get("a") or "") == 4 or bool(g.get("cy"))) == self.year_first
            and bool(g.get("wd")) == self.weekday
            and (bool(g.get("ampm") or g.get("pre")) == self.twelve_hour or self.pattern != 0)
        )

    def describe(self, day_first: bool) -> str:
        """A readable pattern, e.g. `[DD.MM.YY, HH:MM:SS]` or `M/D/YY, h:MM AM -`."""
        y = "YYYY" if self.year_digits == 4 else "YY" if self.year_digits else ""
        if self.calendar == "buddhist":
            y += " BE"
        elif self.calendar == "japanese":
            y = "era+YY"
        parts = ["DD", "MM"] if day_first else ["MM", "DD"]
        if self.pattern == 4:
            date = "YYYY年M月D日"
        elif self.pattern in (2, 3):
            date = ("DD Mon" if day_first else "Mon DD") + (f" {y}" if y else "")
        else:
            date = self.date_sep.join([y, "MM", "DD"] if self.year_first else [*parts, y])
        if self.weekday:
            date = f"Ddd, {date}"
        hour = "h" if self.twelve_hour else "HH"
        time = self.time_sep.join([hour, "MM", "SS"] if self.seconds else [hour, "MM"])
        if self.twelve_hour:
            time += " AM"
        if self.pattern in (1, 2):
            stamp = f"{time}, {date}"
        else:
            mid = ("," if self.comma else "") + " " + (f"{self.word} " if self.word else "")
            stamp = f"{date}{mid}{time}"
        return f"[{stamp}]" if self.bracketed else f"{stamp}:" if self.colon else f"{stamp} -"


class DateError(ValueError):
    """A header's date or time does not exist."""


_ERAS = {"M": 1867, "T": 1911, "S": 1925, "H": 1988, "R": 2018}


def written_year(h: Header) -> int | None:
    """The year a header writes, in the Gregorian calendar; None when it has none."""
    return _year(h)


def _year(h: Header) -> int | None:
    c = h.field("c") or h.field("y") or h.field("cy")
    if not c:
        return None
    if c[0].isalpha():
        return _ERAS[c[0].upper()] + int(c[1:])
    year = int(c)
    if len(c) <= 2:
        year += 2000
    if h.field("be"):
        year -= 543
    return year


def fields(h: Header, day_first: bool, default_year: int) -> tuple[int, int, int]:
    """(year, month, day) of a header under a date order."""
    if h.field("cy"):
        return int(h.field("cy")), int(h.field("cm")), int(h.field("cd"))
    mon = (h.field("mon1") or h.field("mon2")).casefold()
    if mon:
        day = int(h.field("d1") or h.field("d2"))
        return _year(h) or default_year, _MONTHS[mon], day
    a, b = int(h.field("a")), int(h.field("b"))
    if len(h.field("a")) == 4:
        return a, b, int(h.field("c"))
    year = _year(h) or default_year
    return (year, b, a) if day_first else (year, a, b)


_PM = re.compile(
    r"^(?:[Pp]|in the (?:afternoon|evening)|at night|de la (?:tarde|noche)|nachm|em|م|午後|下午|오후)"
)


def timestamp(h: Header, day_first: bool, default_year: int = 2000) -> datetime:
    """The header's local (naive) date and time. An hour 0 with AM is read as midnight."""
    year, month, day = fields(h, day_first, default_year)
    hour, minute, second = int(h.field("h")), int(h.field("m")), int(h.field("s") or 0)
    period = h.field("ampm") or h.field("pre")
    if period:
        if hour > 12:
            raise DateError(f"hour {hour} with {period.strip()!r}")
        pm = bool(_PM.match(period.strip()))
        if period.strip() in ("at night",) and hour < 6:
            pm = False
        hour = hour % 12 + (12 if pm else 0)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise DateError(f"{h.field('date')} {h.field('time')}: {exc}") from exc


class DateOrder:
    """Day-first or month-first, decided from every header of a file as it streams past.

    Both readings are tried on each date: one that cannot exist (a month above 12) counts
    against it, and so does each step back in time. The reading with fewer impossible dates
    wins, then the one with fewer steps back; with a tie, 12-hour "/" dates are taken as US
    month-first, everything else as day-first."""

    def __init__(self) -> None:
        self.impossible = [0, 0]  # [day-first, month-first]
        self.backward = [0, 0]
        self.last: list[datetime | None] = [None, None]
        self.first_proof: list[str] = ["", ""]
        self.decided_by_year = False
        self.us_style = False
        self.seen = 0
        self.numeric = 0  # dates with a numeric month (the only ones an order can change)

    def add(self, h: Header) -> None:
        self.seen += 1
        if self.seen == 1:
            self.us_style = h.field("dsep") == "/" and bool(h.field("ampm"))
        if len(h.field("a")) == 4 or h.field("cy"):
            self.decided_by_year = True
        self.numeric += bool(h.field("a"))
        for i, day_first in enumerate((True, False)):
            try:
                when = timestamp(h, day_first)
            except DateError:
                self.impossible[i] += 1
                if not self.first_proof[1 - i]:
                    self.first_proof[1 - i] = h.field("date")
                continue
            weekday = _WEEKDAYS.get(h.field("wd").casefold(), -1)
            if weekday >= 0 and when.weekday() != weekday:  # Thu, 05/01/2023: 5 January
                self.impossible[i] += 1
                if not self.first_proof[1 - i]:
                    self.first_proof[1 - i] = f"{h.field('wd')} {h.field('date')}"
            last = self.last[i]
            if last is not None and when < last:
                self.backward[i] += 1
            self.last[i] = when

    def decide(self) -> tuple[bool, str]:
        if self.decided_by_year:
            return True, "year first"
        if self.seen and not self.numeric:
            return True, "month names"
        (imp_d, imp_m), (back_d, back_m) = self.impossible, self.backward
        if imp_d != imp_m:
            day_first = imp_d < imp_m
            proof = self.first_proof[0 if day_first else 1]
            return day_first, (
                f"{'day' if day_first else 'month'} first ({proof} cannot be read the other way)"
            )
        if back_d != back_m:
            day_first = back_d < back_m
            return day_first, (
                f"{'day' if day_first else 'month'} first (dates run forward that way: "
                f"{min(back_d, back_m)} steps back against {max(back_d, back_m)})"
            )
        if self.us_style:
            return False, "ambiguous dates: 12-hour '/' taken as month first"
        return True, "ambiguous dates: day first"
