"""Chat logs into timeline entries: a Slack channel export or a plain transcript.

`parse_chat_log` reads the file and returns messages with UTC times and a guessed kind; it
writes nothing. `add_timeline_entries` writes the messages an author ticked, all or none.

Formats:
- Slack: a channel export as Slack writes it (a zip holding `users.json` and one folder per
  channel with a JSON file per day), one day's JSON file (a list of messages with `ts`, `user`,
  `text`), or an API response (`{"messages": [...]}`). `ts` is Unix time, so no zone is needed.
- Transcripts, one message per line: `[10:42] alice: restarted the primary`,
  `2026-03-02 10:42 alice: …`, `[2026-03-02 10:42:05] alice: …`, `10:42 PM alice: …`,
  `10:42 <alice> …`. Times are read in the chosen zone; time-only lines use the chosen day and
  roll over to the next day when the clock goes backwards across midnight. A line that does
  not start with a time continues the message above it.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.db import transaction
from django.db.models import Max

from .models import Incident, TimelineEntry

MAX_BYTES = 2_000_000  # the file or the pasted text
MAX_UNZIPPED_BYTES = 20_000_000
MAX_MESSAGES = 400  # each previewed message is two form fields; Django allows 1,000 fields
MAX_MESSAGE_CHARS = 10_000

Kind = TimelineEntry.Kind

# Guessing a kind from the words of a message; the author confirms or changes each one.
# First match wins. Status updates first: they are what readers of a timeline look for.
KIND_RULES: list[tuple[str, re.Pattern]] = [
    (Kind.STATUS_UPDATE, re.compile(
        r"^(?:\s*(?::[\w+-]+:|[^\w\s]{1,4}))*\s*"  # an emoji or a marker before the word
        r"(status(\s+update)?|update|sitrep|current state)\s*[:\-–—]|"
        r"\bstatus update\b", re.I)),
    (Kind.RESOLUTION, re.compile(
        r"\b(resolved|all clear|fully recovered|back to normal|closing the incident)\b", re.I)),
    (Kind.MITIGATION, re.compile(
        r"\b(mitigat\w*|rolled back|rolling back|roll back|rollback|failed over|failover|"
        r"reverted|revert)\b", re.I)),
    (Kind.ALERT, re.compile(r"\b(alert\w*|firing|triggered|pagerduty|opsgenie)\b", re.I)),
    (Kind.ESCALATION, re.compile(
        r"(\bescalat\w*|\bpaging\b|\bpaged\b|@here|@channel|\bincident commander\b)", re.I)),
    (Kind.DECISION, re.compile(r"\b(decided|decision|we will|we'll|let's)\b", re.I)),
    (Kind.COMMUNICATION, re.compile(
        r"\b(customers?|support team|status ?page|announce\w*|e-?mailed|tweet\w*)\b", re.I)),
    (Kind.DETECTION, re.compile(r"\b(noticed|seeing|spotted|looks like|reports? of)\b", re.I)),
]  # fmt: skip

# Slack subtypes that are people talking; others (joins, topic changes…) are not timeline.
SLACK_CONTENT_SUBTYPES = {None, "", "bot_message", "thread_broadcast", "me_message", "file_share"}
SLACK_NOISE_SUBTYPES = {
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "group_join", "group_leave", "group_topic",
    "group_purpose", "group_name", "bot_add", "bot_remove", "pinned_item", "unpinned_item",
    "reminder_add", "tombstone", "message_deleted", "message_changed",
}  # fmt: skip


class ChatLogError(Exception):
    """The file cannot be used; the message tells the author why and what to do."""


@dataclass
class ChatMessage:
    at: dt.datetime  # aware, UTC
    author: str
    text: str
    kind: str
    line: int | None = None

    @property
    def entry_text(self) -> str:
        return f"{self.author}: {self.text}" if self.author else self.text


@dataclass
class ChatLog:
    source: str  # "slack" or "transcript"
    messages: list[ChatMessage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped, for the preview


def guess_kind(text: str) -> str:
    for kind, pattern in KIND_RULES:
        if pattern.search(text):
            return kind
    return Kind.ACTION


def parse_chat_log(data: bytes, *, zone: ZoneInfo, day: dt.date, filename: str = "") -> ChatLog:
    """Messages of a Slack export or a transcript, oldest first. Raises ChatLogError."""
    if not data or not data.strip():
        raise ChatLogError("The chat log is empty.")
    if len(data) > MAX_BYTES:
        raise ChatLogError(
            f"The chat log is {len(data) / 1_000_000:.1f} MB; the limit is "
            f"{MAX_BYTES / 1_000_000:.0f} MB. Trim it to the incident's hours and try again."
        )
    if data[:4] == b"PK\x03\x04" or filename.lower().endswith(".zip"):
        log = _parse_slack_zip(data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ChatLogError(
                f"The chat log is not UTF-8 text (an invalid byte at byte {error.start + 1:,}). "
                f"Save it as UTF-8 and try again."
            ) from None
        if "\x00" in text:
            raise ChatLogError("The chat log holds binary data; upload a text or JSON file.")
        stripped = text.lstrip()
        if stripped.startswith(("{", "[{", "[\n", "[ ", "[]")) or filename.lower().endswith(
            ".json"
        ):
            log = _parse_slack_json(text)
        else:
            log = _parse_transcript(text, zone=zone, day=day)
    if not log.messages:
        detail = f" ({'; '.join(log.notes)})" if log.notes else ""
        raise ChatLogError(f"No messages were found in the chat log{detail}.")
    if len(log.messages) > MAX_MESSAGES:
        raise ChatLogError(
            f"The chat log holds {len(log.messages):,} messages; at most {MAX_MESSAGES} can be "
            f"imported at once. Trim it to the incident's hours, or import it in parts."
        )
    too_long = [m for m in log.messages if len(m.text) > MAX_MESSAGE_CHARS]
    if too_long:
        where = f"line {too_long[0].line}" if too_long[0].line else too_long[0].at.isoformat()
        raise ChatLogError(
            f"A message ({where}) is longer than {MAX_MESSAGE_CHARS:,} characters; shorten it "
            f"and try again."
        )
    log.messages.sort(key=lambda m: m.at)
    return log


# --- Slack --------------------------------------------------------------------------------------


def _parse_slack_zip(data: bytes) -> ChatLog:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        raise ChatLogError("The file is not a readable zip archive.") from None
    if sum(m.file_size for m in members) > MAX_UNZIPPED_BYTES or len(members) > 2000:
        raise ChatLogError(
            f"The Slack export unpacks to more than {MAX_UNZIPPED_BYTES / 1_000_000:.0f} MB; "
            f"zip only the incident channel's folder and try again."
        )

    def load(member) -> object:
        try:
            return json.loads(archive.read(member).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError, zipfile.BadZipFile, OSError):
            raise ChatLogError(f"{member.filename} in the zip is not valid JSON.") from None

    users = {}
    names = {m.filename.rsplit("/", 1)[-1]: m for m in members if not m.is_dir()}
    if "users.json" in names:
        users = _slack_users(load(names["users.json"]))
    days = [
        m for m in members
        if re.search(r"(^|/)[^/]+/\d{4}-\d{2}-\d{2}\.json$", m.filename)
    ]  # fmt: skip
    channels = sorted({m.filename.rsplit("/", 2)[-2] for m in days})
    if not days:
        raise ChatLogError(
            "The zip holds no channel folders with day files (channel/2026-03-02.json); is it "
            "a Slack export?"
        )
    if len(channels) > 1:
        raise ChatLogError(
            f"The export holds {len(channels)} channels ({', '.join(channels[:8])}). Zip only "
            f"the incident channel's folder, or upload its day files one at a time."
        )
    messages = []
    for member in sorted(days, key=lambda m: m.filename):
        content = load(member)
        if not isinstance(content, list):
            raise ChatLogError(f"{member.filename} is not a list of Slack messages.")
        messages += content
    return _slack_messages(messages, users)


def _parse_slack_json(text: str) -> ChatLog:
    try:
        content = json.loads(text)
    except ValueError as error:
        raise ChatLogError(
            f"The file looks like JSON but cannot be read: {error.msg} (line {error.lineno}, "
            f"column {error.colno}). Is it cut short?"
        ) from None
    if isinstance(content, dict) and isinstance(content.get("messages"), list):
        content = content["messages"]
    if not isinstance(content, list):
        raise ChatLogError(
            "The JSON is not a Slack channel export: expected a list of messages with ts, user "
            "and text."
        )
    return _slack_messages(content, {})


def _slack_users(content) -> dict[str, str]:
    users = {}
    if isinstance(content, list):
        for user in content:
            if isinstance(user, dict) and isinstance(user.get("id"), str):
                profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
                users[user["id"]] = (
                    profile.get("display_name") or user.get("real_name")
                    or profile.get("real_name") or user.get("name") or user["id"]
                )  # fmt: skip
    return users


def _slack_author(message: dict, users: dict[str, str]) -> str:
    profile = message.get("user_profile") if isinstance(message.get("user_profile"), dict) else {}
    user = message.get("user") if isinstance(message.get("user"), str) else ""
    name = (
        profile.get("display_name") or profile.get("real_name") or profile.get("name")
        or users.get(user) or message.get("username") or user or "unknown"
    )  # fmt: skip
    return str(name).strip()[:80]


def _slack_text(text: str, users: dict[str, str]) -> str:
    def replace(match: re.Match) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or users.get(target[1:], target[1:]))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            special = target[1:].split("^")[0]
            return label or f"@{special}"
        return f"{label} ({target})" if label and label != target else target

    text = re.sub(r"<([^<>]+)>", replace, text)
    return html.unescape(text).strip()


def _slack_messages(raw_messages: list, users: dict[str, str]) -> ChatLog:
    log = ChatLog(source="slack")
    skipped: Counter[str] = Counter()
    for raw in raw_messages:
        if not isinstance(raw, dict):
            skipped["entries that are not messages"] += 1
            continue
        kind = raw.get("type", "message")
        subtype = raw.get("subtype")
        if kind != "message":
            skipped[f"of unknown type {str(kind)[:30]!r}"] += 1
            continue
        if subtype in SLACK_NOISE_SUBTYPES:
            skipped[f"{subtype.replace('_', ' ')} notices"] += 1
            continue
        if subtype not in SLACK_CONTENT_SUBTYPES:
            skipped[f"of unknown subtype {str(subtype)[:30]!r}"] += 1
            continue
        try:
            # The fraction of a Slack ts orders messages within a second; it is not a time.
            at = dt.datetime.fromtimestamp(int(float(raw["ts"])), dt.UTC)
        except (KeyError, TypeError, ValueError, OverflowError, OSError):
            skipped["without a valid ts"] += 1
            continue
        text = raw.get("text") if isinstance(raw.get("text"), str) else ""
        text = _slack_text(text, users)
        if not text and isinstance(raw.get("files"), list):
            names = [f.get("name", "a file") for f in raw["files"] if isinstance(f, dict)]
            text = f"(shared {', '.join(names) or 'a file'})"
        if not text:
            skipped["without text"] += 1
            continue
        log.messages.append(
            ChatMessage(at=at, author=_slack_author(raw, users), text=text, kind=guess_kind(text))
        )
    log.notes = [f"{count:,} message{'s' if count != 1 else ''} {why} skipped"
                 if why.startswith(("of", "without")) else f"{count:,} {why} skipped"
                 for why, count in sorted(skipped.items())]  # fmt: skip
    return log


# --- Transcripts --------------------------------------------------------------------------------

_LINE = re.compile(
    r"""^\s*\[?\s*
    (?:(?P<date>\d{4}-\d{2}-\d{2})[ T])?
    (?P<time>\d{1,2}:\d{2}(?::\d{2})?)
    (?:\s*(?P<ampm>[AaPp]\.?[Mm]\.?))?
    \s*(?:[A-Z]{2,5}|Z|[+-]\d{2}:?\d{2})?   # a zone written on the line is ignored: pick it
    \s*\]?\s*[-–—|]?\s*
    (?:<(?P<nick>[^<>]{1,80})>\s*|(?P<author>[\w.@'-]+(?:\ [\w.@'-]+){0,2}):\s?)
    (?P<text>.*)$""",
    re.X,
)


def _parse_transcript(text: str, *, zone: ZoneInfo, day: dt.date) -> ChatLog:
    log = ChatLog(source="transcript")
    not_understood = []
    current_day = day
    previous: dt.datetime | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if not match:
            if log.messages:
                # A wrapped or multi-line message continues the one above.
                log.messages[-1].text += "\n" + line.strip()
            else:
                not_understood.append(number)
            continue
        try:
            clock = _clock(match.group("time"), match.group("ampm"))
        except ValueError:
            not_understood.append(number)
            continue
        if match.group("date"):
            try:
                current_day = dt.date.fromisoformat(match.group("date"))
            except ValueError:
                not_understood.append(number)
                continue
            local = dt.datetime.combine(current_day, clock)
        else:
            local = dt.datetime.combine(current_day, clock)
            if previous is not None and local < previous - dt.timedelta(hours=6):
                # 23:58 then 00:03: the log went past midnight.
                current_day += dt.timedelta(days=1)
                local = dt.datetime.combine(current_day, clock)
        previous = local
        author = (match.group("nick") or match.group("author") or "").strip()
        body = match.group("text").strip()
        log.messages.append(
            ChatMessage(
                at=local.replace(tzinfo=zone).astimezone(dt.UTC),
                author=author,
                text=body,
                kind=guess_kind(body),
                line=number,
            )
        )
    for message in log.messages:
        message.text = message.text.strip()
        message.kind = guess_kind(message.text)
    log.messages = [m for m in log.messages if m.text]
    if not_understood:
        shown = ", ".join(str(n) for n in not_understood[:5])
        more = f" and {len(not_understood) - 5} more" if len(not_understood) > 5 else ""
        log.notes.append(
            f"{len(not_understood)} line{'s' if len(not_understood) != 1 else ''} before the "
            f"first message or without a readable time skipped (line {shown}{more})"
        )
    return log


def _clock(value: str, ampm: str | None) -> dt.time:
    parts = [int(p) for p in value.split(":")]
    hour, minute = parts[0], parts[1]
    second = parts[2] if len(parts) > 2 else 0
    if ampm:
        marker = ampm.replace(".", "").lower()
        if not 1 <= hour <= 12:
            raise ValueError("12-hour clock")
        hour = hour % 12 + (12 if marker == "pm" else 0)
    return dt.time(hour, minute, second)


# --- Writing ------------------------------------------------------------------------------------


def existing_keys(incident: Incident) -> set[tuple[dt.datetime, str]]:
    """(time, text) of the incident's entries, to spot messages imported before."""
    return {
        (at.astimezone(dt.UTC), text)
        for at, text in incident.timeline_entries.values_list("at", "text")
    }


@transaction.atomic
def add_timeline_entries(*, incident: Incident, entries: list[tuple[dt.datetime, str, str]]):
    """Adds (at, kind, text) entries to the incident's timeline, all or none, after the
    entries already there at the same time."""
    start = (incident.timeline_entries.aggregate(top=Max("position"))["top"] or 0) + 1
    created = []
    for offset, (at, kind, text) in enumerate(entries):
        entry = TimelineEntry(
            incident=incident, at=at, kind=kind, text=text, position=start + offset
        )
        entry.full_clean()
        entry.save()
        created.append(entry)
    return created
