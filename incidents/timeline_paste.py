"""Turn a pasted block of notes or chat log into timeline entries — or say, line by line, why not.

Accepted lines (times are in the author's zone):

    09:12 Alert fired for checkout latency          a time; the date is carried from above
    2026-03-02 09:12 Alert fired                    a date and a time (also 2026-03-02T09:12)
    [09:14] maria: rolling back now                 a chat line: "[time] name: text"
    [2026-03-02 09:14] maria: rolling back now
      …and an indented line continues the entry above it

A kind may be given after the time (`09:12 detection: Alert fired`, `09:12 [status update]
Posted on the status page`); otherwise it is guessed from a few words and can be changed in the
preview. Seconds are accepted and dropped. Blank lines are skipped. A time earlier than the one
before by more than twelve hours is taken to be after midnight (23:58 then 00:03).

Pure: no database, no HTTP. The view shows a preview and saves only when every line parsed, or
when the author chose to skip the bad ones.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

MAX_LINES = 500
MAX_TEXT = 2000

# The stored kind values (CONTRACT.md), with the words people use for them.
KINDS = (
    "detection", "alert", "action", "decision", "status_update", "escalation",
    "communication", "mitigation", "resolution", "other",
)  # fmt: skip
KIND_WORDS = {kind: kind for kind in KINDS} | {
    "status update": "status_update",
    "status-update": "status_update",
    "status": "status_update",
    "update": "status_update",
    "detected": "detection",
    "detect": "detection",
    "paged": "escalation",
    "escalated": "escalation",
    "comms": "communication",
    "mitigated": "mitigation",
    "resolved": "resolution",
    "fix": "mitigation",
    "note": "other",
}

# Guesses, first match wins; the preview shows them and the author can change each.
_GUESSES = (
    ("status_update", r"status ?page|status update|posted (an )?update|statuspage"),
    ("resolution", r"\bresolved\b|all clear|fully recovered|back to normal|incident closed"),
    ("mitigation", r"roll(ed)? ?back|rolling back|revert(ed)?|mitigat|fail(ed)? ?over|"
                   r"restart(ed)?|scaled (up|out)|disabled the flag|hotfix"),
    ("detection", r"\bnoticed\b|\bdetected\b|first report|customers? report|reported by"),
    ("alert", r"\balert(s|ed)?\b|\bfired\b|pagerduty|opsgenie"),
    ("escalation", r"escalat|\bpaged\b|called in|woke up"),
    ("decision", r"\bdecided\b|\bdecision\b|agreed to"),
)  # fmt: skip
_GUESS_PATTERNS = tuple((kind, re.compile(pattern, re.IGNORECASE)) for kind, pattern in _GUESSES)

_TIME = r"(?P<time>\d{1,2}:\d{2}(?::\d{2})?)"
_DATE = r"(?P<date>\d{4}-\d{2}-\d{2})"
_BRACKETED = re.compile(rf"^\[(?:{_DATE}[ T])?{_TIME}\]\s*(?P<text>.*)$")
_DATED = re.compile(rf"^{_DATE}[ T]{_TIME}(?:\s*[-–—|:]?\s+|\s*$)(?P<text>.*)$")
_TIMED = re.compile(rf"^{_TIME}(?:\s*[-–—|:]?\s+|\s*$)(?P<text>.*)$")
_LOOKS_DATED = re.compile(r"^\[?\d{4}-\d{1,2}-\d{1,2}")
_LOOKS_TIMED = re.compile(r"^\[?\d{1,2}[:.h]\d{2}")
_SPEAKER = re.compile(r"^(?P<name>[^\s:][^:]{0,39}):\s+(?P<rest>\S.*)$")
_KIND_BRACKET = re.compile(r"^\[(?P<kind>[a-z _-]{3,20})\]\s+(?P<rest>\S.*)$", re.IGNORECASE)

FORMATS_HINT = (
    "Start each line with a time: “HH:MM text”, “YYYY-MM-DD HH:MM text” or “[HH:MM] name: text”."
)


@dataclass(frozen=True)
class ParsedEntry:
    line: int  # where the entry starts, counting from 1
    at: dt.datetime  # aware, in the zone it was parsed in
    kind: str
    text: str
    kind_given: bool = False  # the author wrote the kind; it was not guessed


@dataclass(frozen=True)
class LineError:
    line: int
    raw: str
    message: str


@dataclass(frozen=True)
class PasteResult:
    entries: tuple[ParsedEntry, ...]
    errors: tuple[LineError, ...]

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.entries)


def guess_kind(text: str) -> str:
    for kind, pattern in _GUESS_PATTERNS:
        if pattern.search(text):
            return kind
    return "action"


def _parse_time(raw: str) -> dt.time | None:
    parts = [int(p) for p in raw.split(":")]
    hour, minute = parts[0], parts[1]
    second = parts[2] if len(parts) > 2 else 0
    if hour > 23 or minute > 59 or second > 59:
        return None
    return dt.time(hour, minute)


def _parse_date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        return None


def _split_kind(text: str, *, chat: bool) -> tuple[str | None, str]:
    """An explicit kind at the start of the text, and the rest."""
    bracket = _KIND_BRACKET.match(text)
    if bracket and bracket["kind"].lower().strip() in KIND_WORDS:
        return KIND_WORDS[bracket["kind"].lower().strip()], bracket["rest"]
    speaker = _SPEAKER.match(text)
    if speaker and speaker["name"].lower().strip() in KIND_WORDS and not chat:
        return KIND_WORDS[speaker["name"].lower().strip()], speaker["rest"]
    return None, text


class _Builder:
    """Collects one entry, with the indented lines that continue it."""

    def __init__(self, line: int, at: dt.datetime, kind: str | None, text: str, chat: bool):
        self.line, self.at, self.kind, self.chat = line, at, kind, chat
        self.parts = [text]

    def build(self) -> ParsedEntry:
        text = "\n".join(self.parts).strip()
        kind = self.kind or guess_kind(text)
        if self.kind is None and self.chat and kind == "action":
            kind = "communication"  # a chat line that is not obviously anything else
        return ParsedEntry(self.line, self.at, kind, text, kind_given=self.kind is not None)


def parse(text: str, *, default_date: dt.date, tz: dt.tzinfo) -> PasteResult:
    """Parse a pasted block. `default_date` dates lines that only give a time, until a line
    gives a date; `tz` is the author's zone."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    entries: list[ParsedEntry] = []
    errors: list[LineError] = []
    if len(lines) > MAX_LINES:
        return PasteResult(
            (), (LineError(MAX_LINES + 1, "", f"Paste at most {MAX_LINES} lines at a time."),)
        )

    current: _Builder | None = None
    continuing_error = False
    day = default_date
    previous: dt.datetime | None = None

    def finish():
        nonlocal current
        if current is not None:
            entry = current.build()
            if len(entry.text) > MAX_TEXT:
                errors.append(
                    LineError(
                        entry.line,
                        lines[entry.line - 1].strip(),
                        f"This entry is longer than {MAX_TEXT} characters.",
                    )
                )
            else:
                entries.append(entry)
        current = None

    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        match = _BRACKETED.match(line)
        chat = match is not None
        match = match or _DATED.match(line) or _TIMED.match(line)
        if raw[0] in " \t" and not match:
            if current is not None:
                current.parts.append(raw.strip())
                continue
            if continuing_error:
                continue
            errors.append(
                LineError(
                    number,
                    raw.strip(),
                    "An indented line continues the entry above it, but there is none. "
                    + FORMATS_HINT,
                )
            )
            continuing_error = True
            continue

        finish()
        if not match:
            if _LOOKS_DATED.match(line) or _LOOKS_TIMED.match(line):
                message = (
                    "The date or time is not written the way Debrief reads it. " + FORMATS_HINT
                )
            else:
                message = (
                    "This line does not start with a time. "
                    + FORMATS_HINT
                    + " Indent a line to continue the one above."
                )
            errors.append(LineError(number, line, message))
            continuing_error = True
            continue

        groups = match.groupdict()
        time_of_day = _parse_time(groups["time"])
        if time_of_day is None:
            errors.append(
                LineError(number, line, f"{groups['time']} is not a time of day (00:00 to 23:59).")
            )
            continuing_error = True
            continue
        explicit_date = None
        if groups.get("date"):
            explicit_date = _parse_date(groups["date"])
            if explicit_date is None:
                errors.append(
                    LineError(
                        number,
                        line,
                        f"{groups['date']} is not a date on the calendar (YYYY-MM-DD).",
                    )
                )
                continuing_error = True
                continue
            day = explicit_date

        body = groups["text"].strip()
        kind, body = _split_kind(body, chat=chat)
        if not body:
            errors.append(
                LineError(number, line, "There is no text after the time: say what happened.")
            )
            continuing_error = True
            continue

        at = dt.datetime.combine(day, time_of_day, tzinfo=tz)
        if (
            explicit_date is None
            and previous is not None
            and previous - at > dt.timedelta(hours=12)
        ):
            # 23:58 then 00:03: the log went past midnight.
            day = day + dt.timedelta(days=1)
            at = dt.datetime.combine(day, time_of_day, tzinfo=tz)
        previous = at
        current = _Builder(number, at, kind, body, chat)
        continuing_error = False
    finish()

    if not entries and not errors:
        errors.append(
            LineError(1, "", "There is nothing to add: paste one entry per line. " + FORMATS_HINT)
        )
    errors.sort(key=lambda e: e.line)
    return PasteResult(tuple(entries), tuple(errors))
