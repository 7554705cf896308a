"""The `debrief/1` exchange format: export, validation and all-or-nothing import.

The format is fixed in CONTRACT.md. What this module adds on top of the contract's example (the
contract allows added fields, never renamed ones), so that export → import → export gives the
same document:

- incident: `acknowledged_at`, `customer_visible`, `data_lost`, `answers` (guided questions, by
  prompt), `created_by`, `created_at`, `published_at`;
- contributing factor: `evidence_entries` (positions in this incident's `timeline` list, from
  0), `accepted_risk`, `accepted_risk_reason`;
- action item: `wont_do_reason`, `addresses` (positions in `contributing_factors`),
  `verified_effective_at`, `verified_by`, `created_at`.

Export streams: `iter_json(queryset)` yields the document piece by piece and loads incidents a
chunk at a time, so 10,000 incidents never sit in memory together. Import reads the file twice
with a streaming reader (one incident in memory at a time): a first pass validates every record
and every reference and writes nothing; only when nothing is wrong does a second pass write
everything inside one transaction.
"""

from __future__ import annotations

import codecs
import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import IO, Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_slug
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.text import slugify

from .markdown import render_markdown
from .models import (
    ActionItem,
    Answer,
    ContributingFactor,
    FactorCategory,
    GuidedQuestion,
    Incident,
    Service,
    Severity,
    Tag,
    Team,
    TimelineEntry,
    unique_slug,
)
from .templatetags.debrief import duration

FORMAT = "debrief/1"
# One Markdown field of an imported record; a write-up section longer than this is a paste
# accident (a log file), and rendering it would stall the import.
MAX_TEXT_CHARS = 200_000
# One incident record in the file, however it is laid out; guards the streaming reader.
MAX_RECORD_CHARS = 64 * 1024 * 1024
BATCH = 200

INCIDENT_TEXT = ("summary", "impact", "narrative", "went_well", "lucky", "lessons")
MILESTONES = Incident.MILESTONES


class DocumentError(Exception):
    """The file as a whole cannot be read: empty, not UTF-8, not JSON, or not `debrief/1`."""


class ImportAborted(Exception):
    """Something changed in the database between validation and writing; nothing was written."""


# --- Export ---------------------------------------------------------------------------------


def export_queryset(queryset=None):
    """Incidents with everything a Markdown write-up shows, prefetched (one incident at a
    time: the detail export). Markdown is read as source; the rendered HTML is not loaded."""
    queryset = Incident.objects.all() if queryset is None else queryset
    html_fields = [f"{name}_html" for name in Incident.markdown_fields]
    return queryset.defer(*html_fields).prefetch_related(
        "services",
        "teams",
        "tags",
        "authors",
        "reviewers",
        models.Prefetch(
            "timeline_entries",
            queryset=TimelineEntry.objects.defer("text_html").order_by("at", "position", "id"),
        ),
        models.Prefetch(
            "factors",
            queryset=ContributingFactor.objects.defer("description_html")
            .order_by("position", "id")
            .prefetch_related(models.Prefetch("evidence", TimelineEntry.objects.only("id"))),
        ),
        models.Prefetch(
            "action_items",
            queryset=ActionItem.objects.defer("description_html", "evidence_html")
            .select_related("team", "owner")
            .order_by("id"),
        ),
        models.Prefetch(
            "answers",
            queryset=Answer.objects.defer("text_html")
            .select_related("question")
            .order_by("question__position", "question__prompt", "id"),
        ),
    )


# Incidents without a start time first on every database, then by slug (unique): the order
# never depends on ids, so it survives a move to another database.
EXPORT_ORDER = (F("started_at").asc(nulls_first=True), "slug")


def format_timestamp(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    value = value.astimezone(dt.UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def _or_none(text: str | None) -> str | None:
    return text if text else None


def _grouped(rows, key_index: int = 0) -> dict[int, list]:
    grouped: dict[int, list] = defaultdict(list)
    for row in rows:
        grouped[row[key_index]].append(row)
    return grouped


INCIDENT_VALUES = (
    "id", "slug", "title", "severity", "status", *INCIDENT_TEXT, *MILESTONES,
    "customer_visible", "data_lost", "visibility", "created_by__username", "created_at",
    "published_at",
)  # fmt: skip
M2M_NAMES = {
    "services": (Incident.services.through, "service__name"),
    "teams": (Incident.teams.through, "team__name"),
    "tags": (Incident.tags.through, "tag__name"),
    "authors": (Incident.authors.through, "user__username"),
    "reviewers": (Incident.reviewers.through, "user__username"),
    "visible_teams": (Incident.visible_teams.through, "team__name"),
    "visible_users": (Incident.visible_users.through, "user__username"),
}
ITEM_VALUES = (
    "id", "incident_id", "title", "description", "kind", "team__name", "owner__username",
    "due", "priority", "status", "completed_at", "tracker_url", "evidence", "wont_do_reason",
    "verified_effective_at", "verified_by__username", "created_at",
)  # fmt: skip


def _records(ids: list[int]) -> Iterator[dict[str, Any]]:
    """The `debrief/1` records of these incidents, in the order given, from a fixed number of
    plain value queries (no model instances: this is what keeps 10,000 incidents fast)."""
    incidents = {
        row["id"]: row for row in Incident.objects.filter(pk__in=ids).values(*INCIDENT_VALUES)
    }
    names = {}
    for key, (through, field_name) in M2M_NAMES.items():
        rows = through.objects.filter(incident_id__in=ids).values_list("incident_id", field_name)
        names[key] = _grouped(rows)
    timeline = _grouped(
        TimelineEntry.objects.filter(incident_id__in=ids)
        .order_by("incident_id", "at", "position", "id")
        .values_list("incident_id", "id", "at", "kind", "text")
    )
    factors = _grouped(
        ContributingFactor.objects.filter(incident_id__in=ids)
        .order_by("incident_id", "position", "id")
        .values_list("incident_id", "id", "category", "description", "accepted_risk",
                     "accepted_risk_reason")
    )  # fmt: skip
    evidence = _grouped(
        ContributingFactor.evidence.through.objects.filter(
            contributingfactor__incident_id__in=ids
        ).values_list("contributingfactor_id", "timelineentry_id")
    )
    items = _grouped(
        ActionItem.objects.filter(incident_id__in=ids).order_by("id").values_list(*ITEM_VALUES),
        key_index=1,
    )
    addresses = _grouped(
        ActionItem.addresses.through.objects.filter(actionitem__incident_id__in=ids).values_list(
            "actionitem_id", "contributingfactor_id"
        )
    )
    answers = _grouped(
        Answer.objects.filter(incident_id__in=ids)
        .order_by("incident_id", "question__position", "question__prompt", "id")
        .values_list("incident_id", "question__prompt", "text")
    )
    for pk in ids:
        row = incidents.get(pk)
        if row is None:  # deleted since the list of ids was read
            continue
        entry_rows = timeline.get(pk, [])
        entry_index = {entry[1]: index for index, entry in enumerate(entry_rows)}
        factor_rows = factors.get(pk, [])
        factor_index = {factor[1]: index for index, factor in enumerate(factor_rows)}
        yield {
            "slug": row["slug"],
            "title": row["title"],
            "severity": row["severity"],
            "status": row["status"],
            "summary": _or_none(row["summary"]),
            "impact": _or_none(row["impact"]),
            "narrative": _or_none(row["narrative"]),
            **{name: format_timestamp(row[name]) for name in MILESTONES},
            "customer_visible": row["customer_visible"],
            "data_lost": row["data_lost"],
            **{
                key: sorted(name for _, name in names[key].get(pk, ()))
                for key in ("services", "teams", "tags", "authors", "reviewers")
            },
            "visibility": row["visibility"],
            "visible_teams": sorted(name for _, name in names["visible_teams"].get(pk, ())),
            "visible_users": sorted(name for _, name in names["visible_users"].get(pk, ())),
            "timeline": [
                {"at": format_timestamp(at), "kind": kind, "text": text}
                for _, _, at, kind, text in entry_rows
            ],
            "contributing_factors": [
                {
                    "category": category,
                    "description": description,
                    "evidence_entries": sorted(
                        entry_index[entry_id]
                        for _, entry_id in evidence.get(factor_id, ())
                        if entry_id in entry_index
                    ),
                    "accepted_risk": accepted_risk,
                    "accepted_risk_reason": _or_none(reason),
                }
                for _, factor_id, category, description, accepted_risk, reason in factor_rows
            ],
            "action_items": [
                _item_record(item, addresses, factor_index) for item in items.get(pk, [])
            ],
            "went_well": _or_none(row["went_well"]),
            "lucky": _or_none(row["lucky"]),
            "lessons": _or_none(row["lessons"]),
            "answers": [
                {"question": prompt, "text": text}
                for _, prompt, text in answers.get(pk, [])
                if text.strip()
            ],
            "created_by": row["created_by__username"],
            "created_at": format_timestamp(row["created_at"]),
            "published_at": format_timestamp(row["published_at"]),
        }


def _item_record(item: tuple, addresses: dict, factor_index: dict) -> dict[str, Any]:
    values = dict(zip(ITEM_VALUES, item, strict=True))
    return {
        "title": values["title"],
        "description": _or_none(values["description"]),
        "kind": values["kind"],
        "team": values["team__name"],
        "owner": values["owner__username"],
        "due": values["due"].isoformat() if values["due"] else None,
        "priority": values["priority"],
        "status": values["status"],
        "completed_at": format_timestamp(values["completed_at"]),
        "tracker_url": _or_none(values["tracker_url"]),
        "evidence": _or_none(values["evidence"]),
        "wont_do_reason": _or_none(values["wont_do_reason"]),
        "addresses": sorted(
            factor_index[factor_id]
            for _, factor_id in addresses.get(values["id"], ())
            if factor_id in factor_index
        ),
        "verified_effective_at": format_timestamp(values["verified_effective_at"]),
        "verified_by": values["verified_by__username"],
        "created_at": format_timestamp(values["created_at"]),
    }


def iter_records(queryset=None, *, chunk_size: int = 500) -> Iterator[dict[str, Any]]:
    """Every incident of the queryset as a record, loading `chunk_size` incidents at a time.
    Only the list of ids (a few bytes per incident) is held for the whole export."""
    queryset = Incident.objects.all() if queryset is None else queryset
    ids = list(queryset.order_by(*EXPORT_ORDER).values_list("pk", flat=True))
    for start in range(0, len(ids), chunk_size):
        yield from _records(ids[start : start + chunk_size])


def iter_json(queryset=None, *, chunk_size: int = 500, counter: list | None = None):
    """The whole document as text pieces, one incident at a time.

    `counter`, when given, is a one-item list that receives the number of incidents written
    (a generator cannot return a value to a `for` loop).
    """
    yield '{\n  "format": "debrief/1",\n  "incidents": ['
    count = 0
    for record in iter_records(queryset, chunk_size=chunk_size):
        text = json.dumps(record, ensure_ascii=False, indent=2)
        # JSON strings never hold a raw newline, so this indents the record and nothing else.
        yield ("\n    " if count == 0 else ",\n    ") + text.replace("\n", "\n    ")
        count += 1
    yield "\n  ]\n}\n" if count else "]\n}\n"
    if counter is not None:
        counter[:] = [count]


def export_document(queryset=None) -> str:
    """The document as one string; for one incident or for tests, not for a whole database."""
    return "".join(iter_json(queryset))


# --- Reading a file one incident at a time ----------------------------------------------------

_WHITESPACE = " \t\n\r"
_decoder = json.JSONDecoder()


class _Scanner:
    """Reads a JSON document from a binary stream with a sliding text window.

    `value()` parses the next complete JSON value with the standard decoder, reading more of
    the file when the window ends inside the value; consumed text is dropped, so memory holds
    one incident, not the file.
    """

    def __init__(self, stream: IO[bytes], chunk_size: int = 1 << 16):
        self.stream = stream
        self.chunk_size = chunk_size
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")("strict")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.bytes_read = 0
        self.dropped_lines = 0
        self.dropped_tail = ""  # the text after the last newline that was dropped

    def _fill(self, at_least: int = 0) -> bool:
        if self.eof:
            return False
        if self.pos:
            dropped = self.buf[: self.pos]
            newlines = dropped.count("\n")
            if newlines:
                self.dropped_lines += newlines
                self.dropped_tail = dropped[dropped.rfind("\n") + 1 :]
            else:
                self.dropped_tail += dropped
            self.buf = self.buf[self.pos :]
            self.pos = 0
        data = self.stream.read(max(self.chunk_size, at_least))
        try:
            text = self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as error:
            raise DocumentError(
                f"The file is not UTF-8 text (an invalid byte near byte "
                f"{self.bytes_read + max(error.start, 0) + 1:,}). Save it as UTF-8 and try again."
            ) from None
        self.bytes_read += len(data)
        if not data:
            self.eof = True
        self.buf += text
        return True

    def where(self, pos: int | None = None) -> str:
        pos = self.pos if pos is None else pos
        before = self.buf[:pos]
        newlines = before.count("\n")
        line = self.dropped_lines + newlines + 1
        column = len(before) - before.rfind("\n") if newlines else len(self.dropped_tail) + pos + 1
        return f"line {line:,}, column {column:,}"

    def peek(self) -> str:
        """The next non-blank character without consuming it; "" at the end of the file."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _WHITESPACE:
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._fill():
                return ""

    def expect(self, chars: str, what: str) -> str:
        found = self.peek()
        if found == "":
            raise self.truncated()
        if found not in chars:
            raise DocumentError(f"The file is not valid JSON: expected {what} ({self.where()}).")
        self.pos += 1
        return found

    def truncated(self) -> DocumentError:
        return DocumentError(
            "The file ends in the middle of the JSON document — it looks truncated. "
            "Export it again and upload the whole file."
        )

    def value(self) -> Any:
        if self.peek() == "":
            raise self.truncated()
        start = self.pos
        while True:
            try:
                parsed, end = _decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as error:
                if self.eof:
                    # The input ran out inside the value: the file is cut short.
                    if error.pos >= len(self.buf.rstrip()) or error.msg.startswith(
                        "Unterminated string"
                    ):
                        raise self.truncated() from None
                    raise DocumentError(
                        f"The file is not valid JSON: {error.msg} ({self.where(error.pos)})."
                    ) from None
                # Near the end of the window the value may simply continue in the next chunk.
                near_end = error.pos >= len(self.buf) - 32 or error.msg.startswith("Unterminated")
                if not near_end:
                    raise DocumentError(
                        f"The file is not valid JSON: {error.msg} ({self.where(error.pos)})."
                    ) from None
                if len(self.buf) - start > MAX_RECORD_CHARS:
                    raise DocumentError(
                        f"One value in the file is larger than {MAX_RECORD_CHARS:,} characters "
                        f"({self.where(start)}); nothing was imported."
                    ) from None
                # Read at least as much again, so a huge record is parsed O(log n) times.
                start -= self.pos
                self._fill(at_least=len(self.buf))
                start += self.pos
                continue
            if end == len(self.buf) and not self.eof:
                # A number at the very end of the window may continue in the next chunk.
                start -= self.pos
                self._fill()
                start += self.pos
                continue
            self.pos = end
            return parsed


def read_document(stream: IO[bytes]) -> Iterator[tuple[str, Any, Any]]:
    """Yields ("key", name, value) for top-level fields and ("incident", index, record) for
    each element of `incidents`, in file order, keeping only one record in memory."""
    scanner = _Scanner(stream)
    first = scanner.peek()
    if first == "":
        raise DocumentError("The file is empty.")
    if first != "{":
        raise DocumentError(
            "The file is not a debrief/1 document: it should be a JSON object like "
            '{"format": "debrief/1", "incidents": [...]}.'
        )
    scanner.pos += 1
    if scanner.peek() == "}":
        scanner.pos += 1
    else:
        while True:
            if scanner.peek() != '"':
                scanner.expect('"', "a field name in double quotes")
            key = scanner.value()
            scanner.expect(":", "':' after a field name")
            if key == "incidents" and scanner.peek() == "[":
                scanner.pos += 1
                index = 0
                if scanner.peek() == "]":
                    scanner.pos += 1
                else:
                    while True:
                        yield ("incident", index, scanner.value())
                        index += 1
                        if scanner.expect(",]", "',' or ']' between incidents") == "]":
                            break
            else:
                yield ("key", key, scanner.value())
            if scanner.expect(",}", "',' or '}' between fields") == "}":
                break
    if scanner.peek() != "":
        raise DocumentError(
            f"The file is not valid JSON: extra data after the document ({scanner.where()})."
        )


# --- Validation -------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """A value as an error message quotes it: short, and clearly the file's text."""
    if isinstance(value, str):
        text = value if len(value) <= 60 else value[:57] + "…"
        return repr(text)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value)


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _one_of(choices: Iterable[str]) -> str:
    return ", ".join(choices)


SEVERITY_RANGE = f"{Severity.values[0]}–{Severity.values[-1]}"
# The stored choice values, computed once (`Choices.values` builds a new list on every use).
CHOICES = {
    "severity": Severity.values,
    "status": Incident.Status.values,
    "visibility": Incident.Visibility.values,
    "entry_kind": TimelineEntry.Kind.values,
    "category": FactorCategory.values,
    "item_kind": ActionItem.Kind.values,
    "priority": ActionItem.Priority.values,
    "item_status": ActionItem.Status.values,
}
User = get_user_model()
USERNAME_MAX = User._meta.get_field("username").max_length
_username_validators = User._meta.get_field("username").validators
_url_validator = URLValidator(schemes=["http", "https"])


class _Errors:
    """Collects "incidents[3].timeline[2].at: …" messages for one record."""

    def __init__(self, index: int):
        self.index = index
        self.messages: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.messages.append(f"{path}: {message}")


class _Fields:
    """Reads one JSON object's fields with type checks; every problem becomes an error with its
    path, and a field with a problem gets a harmless default so checking can go on."""

    def __init__(self, record: dict, path: str, errors: _Errors):
        self.record = record
        self.path = path
        self.errors = errors
        self.bad: set[str] = set()

    def error(self, key: str, message: str) -> None:
        self.bad.add(key)
        self.errors.add(f"{self.path}.{key}", message)

    def raw(self, key: str) -> Any:
        return self.record.get(key)

    def text(self, key: str, *, required: bool = False, max_length: int | None = None) -> str:
        value = self.record.get(key)
        if value is None or value == "":
            if required:
                self.error(key, "required")
            return ""
        if not isinstance(value, str):
            self.error(key, f"expected text, found {_kind_of(value)}")
            return ""
        limit = max_length or MAX_TEXT_CHARS
        if len(value) > limit:
            self.error(key, f"{len(value):,} characters is more than the limit of {limit:,}")
            return ""
        if required and not value.strip():
            self.error(key, "required")
            return ""
        return value

    def choice(self, key: str, choices: list[str], default: str, described: str = "") -> str:
        value = self.record.get(key)
        if value is None:
            return default
        if value not in choices or not isinstance(value, str):
            self.error(key, f"{_show(value)} is not one of {described or _one_of(choices)}")
            return default
        return value

    def boolean(self, key: str, *, nullable: bool) -> bool | None:
        value = self.record.get(key)
        if value is None:
            return None if nullable else False
        if not isinstance(value, bool):
            self.error(key, f"expected true, false or null, found {_show(value)}")
            return None if nullable else False
        return value

    def timestamp(self, key: str, *, required: bool = False) -> dt.datetime | None:
        value = self.record.get(key)
        if value is None:
            if required:
                self.error(key, "required")
            return None
        parsed = parse_timestamp(value)
        if isinstance(parsed, str):
            self.error(key, parsed)
            return None
        return parsed

    def date(self, key: str) -> dt.date | None:
        value = self.record.get(key)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                if len(value) == 10:
                    return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.error(key, f"{_show(value)} is not a date like 2026-04-01")
        return None

    def names(self, key: str, *, max_length: int) -> list[str]:
        value = self.record.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"expected a list of names, found {_kind_of(value)}")
            return []
        names: list[str] = []
        for position, item in enumerate(value):
            where = f"{key}[{position}]"
            if not isinstance(item, str) or not item.strip():
                self.error(where, f"expected a name, found {_show(item)}")
            elif len(item.strip()) > max_length:
                self.error(where, f"{_show(item)} is longer than {max_length} characters")
            elif not slugify(item.strip()):
                self.error(where, f"{_show(item)} needs at least one letter or digit")
            elif item.strip() not in names:
                names.append(item.strip())
        return names

    def usernames(self, key: str) -> list[str]:
        value = self.record.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"expected a list of usernames, found {_kind_of(value)}")
            return []
        names = []
        for position, item in enumerate(value):
            name = self.username_value(f"{key}[{position}]", item)
            if name and name not in names:
                names.append(name)
        return names

    def username(self, key: str) -> str | None:
        return self.username_value(key, self.record.get(key))

    def username_value(self, where: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or not value:
            self.error(where, f"expected a username, found {_show(value)}")
            return None
        if len(value) > USERNAME_MAX:
            self.error(where, f"{_show(value)} is longer than {USERNAME_MAX} characters")
            return None
        for validator in _username_validators:
            try:
                validator(value)
            except ValidationError:
                self.error(where, f"{_show(value)} is not a valid username")
                return None
        return value

    def positions(self, key: str, count: int, of: str) -> list[int]:
        value = self.record.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"expected a list of positions in {of}, found {_kind_of(value)}")
            return []
        found = []
        for position, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < count:
                self.error(
                    f"{key}[{position}]",
                    f"{_show(item)} is not a position in {of} (0 to {count - 1})"
                    if count
                    else f"{_show(item)} refers to {of}, which is empty",
                )
            elif item not in found:
                found.append(item)
        return sorted(found)

    def objects(self, key: str) -> list[tuple[str, dict]]:
        value = self.record.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(key, f"expected a list, found {_kind_of(value)}")
            return []
        found = []
        for position, item in enumerate(value):
            where = f"{self.path}.{key}[{position}]"
            if not isinstance(item, dict):
                self.errors.add(where, f"expected an object, found {_kind_of(item)}")
            else:
                found.append((where, item))
        return found

    def model_clean(self, instance: models.Model, fields: dict[str, str], skip: Iterable[str] = ()):
        """Django's own field and model validation (`full_clean`), reported under the JSON
        names. `fields` maps model field names to JSON names; relations are checked apart."""
        exclude = {f.name for f in instance._meta.get_fields()} - set(fields)
        exclude |= {name for name, key in fields.items() if key in self.bad}
        exclude |= set(skip)
        for name, key in fields.items():
            if key in self.bad:
                # Already reported; a default keeps the model's own clean() from repeating it.
                setattr(instance, name, instance._meta.get_field(name).get_default())
        try:
            instance.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)
        except ValidationError as error:
            for name, messages in error.message_dict.items():
                key = fields.get(name, name)
                if key in self.bad:
                    continue
                for message in messages:
                    if name == "__all__":
                        self.errors.add(self.path, message)
                    else:
                        self.error(key, message)


def parse_timestamp(value: Any) -> dt.datetime | str:
    """An aware datetime in UTC, or the error message for people."""
    example = "like 2026-03-02T09:12:00Z"
    if not isinstance(value, str):
        return f"expected an ISO 8601 timestamp with a time zone {example}, found {_show(value)}"
    if re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", value.strip()):
        return f"{_show(value)} has no time of day; write it {example}"
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        return f"{_show(value)} is not an ISO 8601 timestamp {example}"
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return f"{_show(value)} has no time zone; add Z for UTC or an offset such as +01:00"
    return parsed.astimezone(dt.UTC)


@dataclass
class CleanEntry:
    at: dt.datetime
    kind: str
    text: str


@dataclass
class CleanFactor:
    category: str
    description: str
    evidence: list[int]
    accepted_risk: bool
    accepted_risk_reason: str


@dataclass
class CleanItem:
    fields: dict[str, Any]
    team: str
    owner: str | None
    verified_by: str | None
    addresses: list[int]


@dataclass
class CleanIncident:
    """One validated record: plain values, names of things to look up, nothing saved."""

    index: int
    slug: str  # "" when the file gave none (one is made from the title on import)
    fields: dict[str, Any]
    services: list[str]
    teams: list[str]
    tags: list[str]
    authors: list[str]
    reviewers: list[str]
    visible_teams: list[str]
    visible_users: list[str]
    created_by: str | None
    timeline: list[CleanEntry]
    factors: list[CleanFactor]
    items: list[CleanItem]
    answers: list[tuple[str, str]]

    def user_references(self) -> Iterator[tuple[str, str]]:
        """(path, username) for every person the record names."""
        base = f"incidents[{self.index}]"
        for key in ("authors", "reviewers", "visible_users"):
            for position, name in enumerate(getattr(self, key)):
                yield f"{base}.{key}[{position}]", name
        if self.created_by:
            yield f"{base}.created_by", self.created_by
        for position, item in enumerate(self.items):
            for key in ("owner", "verified_by"):
                name = getattr(item, key)
                if name:
                    yield f"{base}.action_items[{position}].{key}", name

    def team_names(self) -> set[str]:
        return {*self.teams, *self.visible_teams, *(item.team for item in self.items)}


INCIDENT_MODEL_FIELDS = {
    "slug": "slug", "title": "title", "severity": "severity", "status": "status",
    **{name: name for name in INCIDENT_TEXT}, **{name: name for name in MILESTONES},
    "customer_visible": "customer_visible", "data_lost": "data_lost",
    "visibility": "visibility", "created_at": "created_at", "published_at": "published_at",
}  # fmt: skip
ITEM_MODEL_FIELDS = {
    "title": "title", "description": "description", "kind": "kind", "due": "due",
    "priority": "priority", "status": "status", "completed_at": "completed_at",
    "tracker_url": "tracker_url", "evidence": "evidence", "wont_do_reason": "wont_do_reason",
    "verified_effective_at": "verified_effective_at", "created_at": "created_at",
}  # fmt: skip


def clean_incident(record: Any, index: int) -> tuple[CleanIncident | None, list[str]]:
    """Checks one record of the file: (clean values, errors). Only a record with no errors
    may be written; a record that is not even an object gives (None, errors)."""
    path = f"incidents[{index}]"
    errors = _Errors(index)
    if not isinstance(record, dict):
        return None, [f"{path}: expected an object, found {_kind_of(record)}"]
    f = _Fields(record, path, errors)

    slug = record.get("slug")
    if slug is not None and not isinstance(slug, str):
        f.error("slug", f"expected text, found {_kind_of(slug)}")
        slug = ""
    slug = slug or ""
    if slug:
        try:
            validate_slug(slug)
            if len(slug) > 100:
                raise ValidationError("too long")
        except ValidationError:
            f.error(
                "slug",
                f"{_show(slug)} is not a slug (at most 100 letters, digits, '-' or '_')",
            )
            slug = ""

    fields: dict[str, Any] = {
        "title": f.text("title", required=True, max_length=200),
        "severity": f.choice("severity", CHOICES["severity"], Severity.SEV3, SEVERITY_RANGE),
        "status": f.choice("status", CHOICES["status"], Incident.Status.DRAFT),
        **{name: f.text(name) for name in INCIDENT_TEXT},
        **{name: f.timestamp(name) for name in MILESTONES},
        "customer_visible": f.boolean("customer_visible", nullable=True),
        "data_lost": f.boolean("data_lost", nullable=True),
        "visibility": f.choice("visibility", CHOICES["visibility"], Incident.Visibility.EVERYONE),
        "created_at": f.timestamp("created_at"),
        "published_at": f.timestamp("published_at"),
    }
    clean = CleanIncident(
        index=index,
        slug=slug,
        fields=fields,
        services=f.names("services", max_length=100),
        teams=f.names("teams", max_length=100),
        tags=f.names("tags", max_length=60),
        authors=f.usernames("authors"),
        reviewers=f.usernames("reviewers"),
        visible_teams=f.names("visible_teams", max_length=100),
        visible_users=f.usernames("visible_users"),
        created_by=f.username("created_by"),
        timeline=[],
        factors=[],
        items=[],
        answers=[],
    )
    model_fields = {k: v for k, v in fields.items() if v is not None}
    f.model_clean(
        Incident(slug=slug or "placeholder", **model_fields),
        INCIDENT_MODEL_FIELDS,
        skip=() if slug else ("slug",),
    )

    for where, raw in f.objects("timeline"):
        e = _Fields(raw, where, errors)
        entry = CleanEntry(
            at=e.timestamp("at", required=True),
            kind=e.choice("kind", CHOICES["entry_kind"], TimelineEntry.Kind.OTHER),
            text=e.text("text", required=True),
        )
        clean.timeline.append(entry)

    for where, raw in f.objects("contributing_factors"):
        c = _Fields(raw, where, errors)
        clean.factors.append(
            CleanFactor(
                category=c.choice("category", CHOICES["category"], FactorCategory.UNKNOWN),
                description=c.text("description", required=True),
                evidence=c.positions("evidence_entries", len(clean.timeline), "the timeline"),
                accepted_risk=bool(c.boolean("accepted_risk", nullable=False)),
                accepted_risk_reason=c.text("accepted_risk_reason"),
            )
        )

    for where, raw in f.objects("action_items"):
        a = _Fields(raw, where, errors)
        item_fields = {
            "title": a.text("title", required=True, max_length=200),
            "description": a.text("description"),
            "kind": a.choice("kind", CHOICES["item_kind"], ActionItem.Kind.PREVENT),
            "due": a.date("due"),
            "priority": a.choice("priority", CHOICES["priority"], "medium"),
            "status": a.choice("status", CHOICES["item_status"], ActionItem.Status.OPEN),
            "completed_at": a.timestamp("completed_at"),
            "tracker_url": a.text("tracker_url", max_length=500),
            "evidence": a.text("evidence"),
            "wont_do_reason": a.text("wont_do_reason"),
            "verified_effective_at": a.timestamp("verified_effective_at"),
            "created_at": a.timestamp("created_at"),
        }
        team_name = raw.get("team")
        if team_name is None or team_name == "":
            a.error("team", "required: the team that owns this item")
            team_name = ""
        elif not isinstance(team_name, str):
            a.error("team", f"expected one team name, found {_kind_of(team_name)}")
            team_name = ""
        elif len(team_name.strip()) > 100 or not slugify(team_name):
            a.error("team", f"{_show(team_name)} is not a usable team name")
            team_name = ""
        if item_fields["tracker_url"] and "tracker_url" not in a.bad:
            try:
                _url_validator(item_fields["tracker_url"])
            except ValidationError:
                a.error("tracker_url", f"{_show(item_fields['tracker_url'])} is not an http(s) URL")
        a.model_clean(
            ActionItem(**{k: v for k, v in item_fields.items() if v is not None}),
            ITEM_MODEL_FIELDS,
        )
        clean.items.append(
            CleanItem(
                fields=item_fields,
                team=team_name.strip(),
                owner=a.username("owner"),
                verified_by=a.username("verified_by"),
                addresses=a.positions("addresses", len(clean.factors), "contributing_factors"),
            )
        )

    for where, raw in f.objects("answers"):
        q = _Fields(raw, where, errors)
        prompt = q.text("question", required=True, max_length=300)
        text = q.text("text")
        if prompt and text.strip():
            clean.answers.append((prompt.strip(), text))

    # The record comes back even with errors, so the references it names can be checked too
    # and every problem of the file is reported in one go.
    return clean, errors.messages


# --- Import -----------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import found (validation) or did (after writing)."""

    incidents: int = 0
    new: int = 0
    replaced: int = 0
    timeline_entries: int = 0
    factors: int = 0
    action_items: int = 0
    answers: int = 0
    new_teams: list[str] = field(default_factory=list)
    new_services: list[str] = field(default_factory=list)
    new_tags: list[str] = field(default_factory=list)
    new_users: list[str] = field(default_factory=list)
    missing_users: list[str] = field(default_factory=list)  # when accounts may not be created
    errors: list[str] = field(default_factory=list)
    invalid_records: int = 0
    written: bool = False
    # The slugs the file names, so slugs made from titles never take one a later record needs.
    slugs: set[str] = field(default_factory=set, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        verb = "Imported" if self.written else "Would import"
        parts = [
            f"{verb} {self.incidents:,} incident{'s' if self.incidents != 1 else ''} "
            f"({self.new:,} new, {self.replaced:,} replaced): "
            f"{self.timeline_entries:,} timeline entries, {self.factors:,} contributing "
            f"factors, {self.action_items:,} action items, {self.answers:,} answers."
        ]
        created = [
            _created(self.new_teams, "team"),
            _created(self.new_services, "service"),
            _created(self.new_tags, "tag"),
            _created(self.new_users, "inactive user"),
        ]
        created = [text for text in created if text]
        if created:
            verb = "Created" if self.written else "Will create"
            parts.append(f"{verb} {'; '.join(created)}.")
        return " ".join(parts)


def _created(names: list[str], noun: str) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10:,} more" if len(names) > 10 else "")
    return f"{len(names):,} {noun}{'s' if len(names) != 1 else ''} ({shown})"


def _named_lookup(model, names: Iterable[str]) -> dict[str, models.Model]:
    """Existing teams, services or tags for names in a file: by exact name, then the same name
    in another case, then by slug (the CONTRACT's lowercase names are slugs)."""
    names = set(names)
    found: dict[str, models.Model] = {}
    if not names:
        return found
    slugs = {name: slugify(name) for name in names}
    candidates = []
    name_list = sorted(names)
    for start in range(0, len(name_list), 500):
        part = name_list[start : start + 500]
        query = Q(name__in=part) | Q(slug__in=part) | Q(slug__in=[slugs[n] for n in part])
        candidates += list(model.objects.filter(query))
    for name in names:
        by_name = [c for c in candidates if c.name == name]
        by_iname = [c for c in candidates if c.name.lower() == name.lower()]
        by_slug = [c for c in candidates if c.slug in (name, slugs[name])]
        match = (by_name or by_iname or by_slug or [None])[0]
        if match is not None:
            found[name] = match
    return found


def _missing_named(model, names: set[str]) -> list[str]:
    """Names that would create a new row, one per distinct slug (two spellings of one new team
    make one team)."""
    existing = _named_lookup(model, names)
    seen, new = set(), []
    for name in sorted(names):
        if name in existing:
            continue
        key = slugify(name)
        if key not in seen:
            seen.add(key)
            new.append(name)
    return new


def _existing_usernames(usernames: Iterable[str]) -> set[str]:
    usernames = sorted(set(usernames))
    found = set()
    for start in range(0, len(usernames), 500):
        found |= set(
            User.objects.filter(username__in=usernames[start : start + 500]).values_list(
                "username", flat=True
            )
        )
    return found


def _existing_slugs(slugs: Iterable[str]) -> dict[str, int]:
    slugs = sorted(set(slugs))
    found = {}
    for start in range(0, len(slugs), 500):
        found.update(
            Incident.objects.filter(slug__in=slugs[start : start + 500]).values_list("slug", "pk")
        )
    return found


# progress(stage, done, total): stage "read" counts bytes of the file, "write" incidents.
Progress = Callable[[str, int, int | None], None]


def _read_records(stream: IO[bytes], progress: Progress | None = None):
    """Yields (index, record) after checking the top level; records the format problems."""
    seen_format = False
    stream.seek(0)
    for event, key, value in read_document(stream):
        if event == "incident":
            if progress:
                progress("read", stream.tell(), None)
            yield key, value
        elif key == "format":
            seen_format = True
            if value != FORMAT:
                raise DocumentError(
                    f"format: {_show(value)} is not {FORMAT!r}; this version of Debrief reads "
                    f"{FORMAT} documents only."
                )
        elif key == "incidents":
            raise DocumentError(f"incidents: expected a list, found {_kind_of(value)}")
    if not seen_format:
        raise DocumentError(
            f'format: missing; a debrief/1 document starts {{"format": "{FORMAT}", …'
        )


def validate_file(
    stream: IO[bytes],
    *,
    update: bool = False,
    create_users: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """First pass: reads and checks every record and every reference; writes nothing.

    Raises `DocumentError` when the file as a whole is unreadable; record problems end up in
    `report.errors`, each naming its record and field.
    """
    report = ImportReport()
    by_index: dict[int, list[str]] = {}
    slug_first: dict[str, int] = {}
    user_refs: list[tuple[int, str, str]] = []  # (record, path, username), in file order
    teams, services, tags = set(), set(), set()
    for index, record in _read_records(stream, progress):
        report.incidents += 1
        clean, errors = clean_incident(record, index)
        slug = record.get("slug") if isinstance(record, dict) else None
        if isinstance(slug, str) and slug:
            if slug in slug_first:
                errors.append(
                    f"incidents[{index}].slug: {slug!r} appears more than once in the file "
                    f"(first at incidents[{slug_first[slug]}])"
                )
            else:
                slug_first[slug] = index
        if errors:
            by_index[index] = errors
        if clean is None:
            continue
        report.timeline_entries += len(clean.timeline)
        report.factors += len(clean.factors)
        report.action_items += len(clean.items)
        report.answers += len(clean.answers)
        user_refs += [(index, path, name) for path, name in clean.user_references()]
        teams |= clean.team_names()
        services |= set(clean.services)
        tags |= set(clean.tags)

    report.slugs = set(slug_first)
    existing = _existing_slugs(slug_first)
    for slug in existing:
        if not update:
            index = slug_first[slug]
            by_index.setdefault(index, []).append(
                f"incidents[{index}].slug: an incident {slug!r} already exists (use --update "
                f"to replace it)"
            )
    report.replaced = len(existing) if update else 0
    report.new = report.incidents - report.replaced

    usernames = {name for _, _, name in user_refs}
    missing = sorted(usernames - _existing_usernames(usernames))
    if create_users:
        report.new_users = missing
    elif missing:
        report.missing_users = missing
        missing_set = set(missing)
        for index, path, username in user_refs:
            if username in missing_set:
                by_index.setdefault(index, []).append(f"{path}: there is no user {username!r}")
    report.new_teams = _missing_named(Team, teams)
    report.new_services = _missing_named(Service, services)
    report.new_tags = _missing_named(Tag, tags)

    report.invalid_records = len(by_index)
    report.errors = [message for index in sorted(by_index) for message in by_index[index]]
    return report


class _Resolver:
    """Finds or creates the teams, services, tags, people and questions records name."""

    def __init__(self, *, create_users: bool):
        self.create_users = create_users
        self.cache: dict[type, dict[str, models.Model]] = defaultdict(dict)
        self.users: dict[str, Any] = {}
        self.questions: dict[str, GuidedQuestion] = {}
        self.created: dict[str, list[str]] = defaultdict(list)
        self.unusable_password = make_password(None)

    def prime(self, cleans: list[CleanIncident]) -> None:
        """Loads, in a few queries, everything a batch of records names."""
        wanted: dict[type, set[str]] = {Team: set(), Service: set(), Tag: set()}
        usernames, prompts = set(), set()
        for clean in cleans:
            wanted[Team] |= clean.team_names()
            wanted[Service] |= set(clean.services)
            wanted[Tag] |= set(clean.tags)
            usernames |= {name for _, name in clean.user_references()}
            prompts |= {prompt for prompt, _ in clean.answers}
        for model, names in wanted.items():
            names -= set(self.cache[model])
            self.cache[model].update(_named_lookup(model, names))
        usernames -= set(self.users)
        for start in range(0, len(usernames), 500):
            part = sorted(usernames)[start : start + 500]
            self.users.update({u.username: u for u in User.objects.filter(username__in=part)})
        prompts -= set(self.questions)
        if prompts:
            for question in GuidedQuestion.objects.filter(prompt__in=prompts).order_by("id"):
                self.questions.setdefault(question.prompt, question)

    def named(self, model, name: str):
        cache = self.cache[model]
        if name not in cache:
            # Another spelling of a row this import already made ("Payments" and "payments").
            slug = slugify(name)
            match = next((obj for obj in cache.values() if obj.slug == slug), None)
            if match is None:
                max_length = model._meta.get_field("slug").max_length
                match = model(name=name, slug=unique_slug(model, slug, max_length=max_length))
                match.full_clean()
                match.save()
                self.created[model.__name__].append(name)
            cache[name] = match
        return cache[name]

    def user(self, username: str | None):
        if username is None:
            return None
        if username not in self.users:
            if not self.create_users:
                raise ImportAborted(f"The user {username!r} is gone; nothing was imported.")
            user = User(username=username, is_active=False, password=self.unusable_password)
            user.full_clean(exclude=["password"])
            user.save()
            self.users[username] = user
            self.created["User"].append(username)
        return self.users[username]

    def question(self, prompt: str) -> GuidedQuestion:
        if prompt not in self.questions:
            # A question this Debrief does not ask: kept, but not offered to new write-ups.
            last = GuidedQuestion.objects.order_by("-position").values_list("position", flat=True)
            question = GuidedQuestion(
                prompt=prompt, position=(last.first() or 0) + 10, is_active=False
            )
            question.full_clean()
            question.save()
            self.questions[prompt] = question
        return self.questions[prompt]


@lru_cache(maxsize=2048)
def _render(text: str) -> str:
    # Timeline texts repeat ("Rolled back the release."); rendering each once keeps imports fast.
    return render_markdown(text)


def _render_fields(instance) -> None:
    for name in instance.markdown_fields:
        setattr(instance, f"{name}_html", _render(getattr(instance, name)))


M2M = ("services", "teams", "tags", "authors", "reviewers", "visible_teams", "visible_users")


def _write_batch(cleans: list[CleanIncident], resolver: _Resolver, *, update: bool, reserved):
    """Writes one batch of validated records: a fixed number of queries for the batch, plus
    one per replaced incident."""
    resolver.prime(cleans)
    existing = _existing_slugs(c.slug for c in cleans if c.slug)
    if existing and not update:
        raise ImportAborted(
            f"Someone created {sorted(existing)[0]!r} while this import ran; nothing was "
            f"imported. Run the import again."
        )
    replaced_ids = list(existing.values())
    if replaced_ids:
        # Replacing keeps the incident row (its id, comments, links from lessons) and swaps its
        # content: children and relations are deleted here and written again below.
        TimelineEntry.objects.filter(incident_id__in=replaced_ids).delete()
        ContributingFactor.objects.filter(incident_id__in=replaced_ids).delete()
        ActionItem.objects.filter(incident_id__in=replaced_ids).delete()
        Answer.objects.filter(incident_id__in=replaced_ids).delete()
        for name in M2M:
            getattr(Incident, name).through.objects.filter(incident_id__in=replaced_ids).delete()

    now = timezone.now()
    incidents: list[Incident] = []
    new_incidents: list[Incident] = []
    for clean in cleans:
        values = dict(clean.fields)
        values["created_at"] = values["created_at"] or now
        values["created_by"] = resolver.user(clean.created_by)
        incident = Incident(slug=clean.slug, **values)
        if not clean.slug:
            incident.slug = _free_slug(incident, reserved)
        _render_fields(incident)
        # Checked in the first pass; again here because this is the instance that is saved
        # (created_by is resolved above, so its existence query is skipped).
        incident.full_clean(
            exclude=["slug", "created_by", *M2M], validate_unique=False,
            validate_constraints=False,
        )  # fmt: skip
        if clean.slug in existing:
            incident.pk = existing[clean.slug]
            fields = [
                f.name
                for f in Incident._meta.concrete_fields
                if not f.primary_key and f.name != "version"
            ]
            incident.save(update_fields=fields)
            Incident.objects.filter(pk=incident.pk).update(version=F("version") + 1)
        else:
            new_incidents.append(incident)
        incidents.append(incident)
    Incident.objects.bulk_create(new_incidents)
    if new_incidents and new_incidents[0].pk is None:
        raise ImportAborted("The database did not return ids for new incidents.")

    through_rows = defaultdict(list)
    entries, factors, items, answers = [], [], [], []
    for clean, incident in zip(cleans, incidents, strict=True):
        for name, model in (("services", Service), ("tags", Tag)):
            for value in getattr(clean, name):
                through_rows[name].append((incident.pk, resolver.named(model, value).pk))
        for name in ("teams", "visible_teams"):
            for value in getattr(clean, name):
                through_rows[name].append((incident.pk, resolver.named(Team, value).pk))
        for name in ("authors", "reviewers", "visible_users"):
            for value in getattr(clean, name):
                through_rows[name].append((incident.pk, resolver.user(value).pk))
        incident_entries = []
        for position, entry in enumerate(clean.timeline):
            row = TimelineEntry(
                incident_id=incident.pk, at=entry.at, kind=entry.kind, text=entry.text,
                position=position,
            )  # fmt: skip
            _render_fields(row)
            incident_entries.append(row)
        entries.append(incident_entries)
        incident_factors = []
        for position, factor in enumerate(clean.factors):
            row = ContributingFactor(
                incident_id=incident.pk, category=factor.category,
                description=factor.description, accepted_risk=factor.accepted_risk,
                accepted_risk_reason=factor.accepted_risk_reason, position=position,
            )  # fmt: skip
            _render_fields(row)
            incident_factors.append(row)
        factors.append(incident_factors)
        incident_items = []
        for item in clean.items:
            values = {k: v for k, v in item.fields.items() if v is not None}
            values.setdefault("created_at", now)
            row = ActionItem(
                incident_id=incident.pk, team=resolver.named(Team, item.team),
                owner=resolver.user(item.owner), verified_by=resolver.user(item.verified_by),
                **values,
            )  # fmt: skip
            _render_fields(row)
            incident_items.append(row)
        items.append(incident_items)
        for prompt, text in clean.answers:
            row = Answer(incident_id=incident.pk, question=resolver.question(prompt), text=text)
            _render_fields(row)
            answers.append(row)

    TimelineEntry.objects.bulk_create([e for group in entries for e in group], batch_size=1000)
    ContributingFactor.objects.bulk_create([f for group in factors for f in group])
    ActionItem.objects.bulk_create([i for group in items for i in group])
    Answer.objects.bulk_create(answers)
    evidence, addresses = [], []
    for clean, group_entries, group_factors, group_items in zip(
        cleans, entries, factors, items, strict=True
    ):
        for factor, row in zip(clean.factors, group_factors, strict=True):
            for position in factor.evidence:
                evidence.append((row.pk, group_entries[position].pk))
        for item, row in zip(clean.items, group_items, strict=True):
            for position in item.addresses:
                addresses.append((row.pk, group_factors[position].pk))
    through_rows["evidence"] = evidence
    through_rows["addresses"] = addresses
    _bulk_through(through_rows)


def _bulk_through(rows: dict[str, list[tuple[int, int]]]) -> None:
    relations = {
        "services": (Incident.services, "service_id"),
        "teams": (Incident.teams, "team_id"),
        "tags": (Incident.tags, "tag_id"),
        "authors": (Incident.authors, "user_id"),
        "reviewers": (Incident.reviewers, "user_id"),
        "visible_teams": (Incident.visible_teams, "team_id"),
        "visible_users": (Incident.visible_users, "user_id"),
    }
    for name, pairs in rows.items():
        if not pairs:
            continue
        if name == "evidence":
            through, left, right = (
                ContributingFactor.evidence.through, "contributingfactor_id", "timelineentry_id"
            )  # fmt: skip
        elif name == "addresses":
            through, left, right = (
                ActionItem.addresses.through, "actionitem_id", "contributingfactor_id"
            )  # fmt: skip
        else:
            descriptor, right = relations[name]
            through, left = descriptor.through, "incident_id"
        through.objects.bulk_create(
            [through(**{left: a, right: b}) for a, b in dict.fromkeys(pairs)], batch_size=1000
        )


def _free_slug(incident: Incident, reserved: set[str]) -> str:
    day = (incident.started_at or incident.created_at or timezone.now()).date()
    base = f"{slugify(incident.title)[:80].strip('-') or 'incident'}-{day:%Y-%m-%d}"
    slug, n = base, 2
    while slug in reserved or Incident.objects.filter(slug=slug).exists():
        slug, n = f"{base}-{n}", n + 1
    reserved.add(slug)
    return slug


def import_file(
    stream: IO[bytes],
    *,
    update: bool = False,
    create_users: bool = False,
    progress: Progress | None = None,
) -> ImportReport:
    """Validates the whole file, then — only when nothing is wrong — writes it in one
    transaction. Returns the report; `report.written` says whether anything was written."""
    report = validate_file(stream, update=update, create_users=create_users, progress=progress)
    if not report.ok:
        return report
    write_file(stream, report, update=update, create_users=create_users, progress=progress)
    return report


@transaction.atomic
def write_file(
    stream: IO[bytes],
    report: ImportReport,
    *,
    update: bool,
    create_users: bool,
    progress: Progress | None = None,
) -> None:
    """Second pass over a file `validate_file` passed: writes everything or nothing."""
    resolver = _Resolver(create_users=create_users)
    reserved = set(report.slugs)
    batch: list[CleanIncident] = []
    written = 0

    def flush():
        nonlocal batch, written
        _write_batch(batch, resolver, update=update, reserved=reserved)
        written += len(batch)
        batch = []
        if progress:
            progress("write", written, report.incidents)

    try:
        for index, record in _read_records(stream):
            clean, errors = clean_incident(record, index)
            if clean is None or errors:
                raise ImportAborted(f"The file changed while it was imported: {errors[0]}")
            batch.append(clean)
            if len(batch) == BATCH:
                flush()
        if batch:
            flush()
    except IntegrityError as error:
        raise ImportAborted(
            f"The database refused the import ({error}); nothing was imported."
        ) from error
    report.new_teams = resolver.created["Team"]
    report.new_services = resolver.created["Service"]
    report.new_tags = resolver.created["Tag"]
    report.new_users = resolver.created["User"]
    report.written = True


# --- Markdown ---------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _plain(text: str) -> str:
    """Text people typed into a plain field, safe inside a Markdown line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _when(value: dt.datetime | None, zone) -> str:
    return timezone.localtime(value, zone).strftime("%Y-%m-%d %H:%M") if value else "—"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line if line.strip() else "" for line in text.strip().splitlines())


def incident_markdown(incident: Incident, zone=None) -> str:
    """The complete write-up as one Markdown document (expects `export_queryset()`'s
    prefetches). Author-written sections are their Markdown source; plain fields are escaped."""
    zone = zone or timezone.get_current_timezone()
    zone_name = getattr(zone, "key", str(zone))
    out: list[str] = [f"# {_plain(incident.title)}", ""]

    def names(items) -> str:
        return ", ".join(_plain(str(item)) for item in items) or "—"

    def people(users) -> str:
        return (
            ", ".join(
                _plain(f"{u.get_full_name()} ({u.username})" if u.get_full_name() else u.username)
                for u in users
            )
            or "—"
        )

    out += [
        f"- **Severity:** {_plain(incident.get_severity_display())}",
        f"- **Status:** {incident.get_status_display()}",
        f"- **Services:** {names(incident.services.all())}",
        f"- **Teams:** {names(incident.teams.all())}",
        f"- **Tags:** {names(incident.tags.all())}",
        f"- **Written by:** {people(incident.authors.all())}",
        f"- **Reviewed by:** {people(incident.reviewers.all())}",
    ]
    if incident.visibility != Incident.Visibility.EVERYONE:
        out.append(f"- **Visible to:** {incident.get_visibility_display().lower()}")
    out += ["", f"| Milestone | Time ({_plain(zone_name)}) |", "|---|---|"]
    for name in MILESTONES:
        label = Incident._meta.get_field(name).verbose_name.capitalize()
        out.append(f"| {label} | {_when(getattr(incident, name), zone)} |")
    out += [
        "",
        f"- **Time to detect:** {duration(incident.time_to_detect)}",
        f"- **Time to mitigate:** {duration(incident.time_to_mitigate)}",
        f"- **Time to resolve:** {duration(incident.time_to_resolve)}",
    ]
    impact_notes = []
    if incident.customer_visible is not None:
        impact_notes.append(
            "Visible to customers." if incident.customer_visible else "Not visible to customers."
        )
    if incident.data_lost is not None:
        impact_notes.append("Data was lost." if incident.data_lost else "No data was lost.")

    def section(title: str, body: str, extra: str = "") -> None:
        if body.strip() or extra:
            out.extend(["", f"## {title}", ""])
            if extra:
                out.extend([extra, ""])
            if body.strip():
                out.append(body.strip())

    section("Summary", incident.summary)
    section("Impact", incident.impact, " ".join(impact_notes))
    section("What happened", incident.narrative)
    answers = [a for a in incident.answers.all() if a.text.strip()]
    if answers:
        out.extend(["", "## Questions we asked ourselves"])
        for answer in answers:
            out.extend(["", f"### {_plain(answer.question.prompt)}", "", answer.text.strip()])

    timeline = list(incident.timeline_entries.all())
    entry_label = {}
    out.extend(["", "## Timeline", ""])
    if timeline:
        out.extend([f"All times are {_plain(zone_name)}.", ""])
        day = None
        for entry in timeline:
            local = timezone.localtime(entry.at, zone)
            stamp = local.strftime("%H:%M") if local.date() == day else f"{local:%Y-%m-%d %H:%M}"
            day = local.date()
            entry_label[entry.pk] = f"{local:%H:%M} {entry.get_kind_display().lower()}"
            text = entry.text.strip()
            first, _, rest = text.partition("\n")
            out.append(f"- **{stamp}** · *{entry.get_kind_display()}* — {first}")
            if rest.strip():
                out.append(_indent(rest))
    else:
        out.append("No timeline entries.")

    factors = list(incident.factors.all())
    out.extend(["", "## Contributing factors"])
    if not factors:
        out.extend(["", "No contributing factors."])
    for number, factor in enumerate(factors, start=1):
        out.extend(["", f"### {number}. {_plain(factor.get_category_display())}", ""])
        out.append(factor.description.strip())
        evidence = [entry_label[e.pk] for e in factor.evidence.all() if e.pk in entry_label]
        if evidence:
            out.extend(["", f"Evidence in the timeline: {_plain(', '.join(evidence))}."])
        if factor.accepted_risk:
            reason = (
                f": {_plain(factor.accepted_risk_reason)}" if factor.accepted_risk_reason else ""
            )
            out.extend(["", f"Accepted as a risk{reason}."])

    items = list(incident.action_items.all())
    out.extend(["", "## Action items"])
    if not items:
        out.extend(["", "No action items."])
    for item in items:
        owner = item.owner
        owner_text = (
            (
                f"{owner.get_full_name()} ({owner.username})"
                if owner.get_full_name()
                else owner.username
            )
            if owner
            else "unassigned"
        )
        out.extend(
            [
                "",
                f"### {_plain(item.title)}",
                "",
                f"- **Status:** {item.get_status_display()}"
                + (f" (completed {_when(item.completed_at, zone)})" if item.completed_at else ""),
                f"- **Owner:** {_plain(owner_text)} · **Team:** {_plain(item.team.name)}",
                f"- **Due:** {item.due.isoformat() if item.due else '—'} · "
                f"**Priority:** {item.get_priority_display()} · **Kind:** {item.get_kind_display()}",
            ]
        )
        if item.tracker_url:
            out.append(f"- **Tracker:** <{item.tracker_url}>")
        if item.description.strip():
            out.extend(["", item.description.strip()])
        if item.evidence.strip():
            out.extend(["", "**Evidence:**", "", item.evidence.strip()])
        if item.wont_do_reason.strip():
            out.extend(["", f"**Why not:** {_plain(item.wont_do_reason)}"])

    section("What went well", incident.went_well)
    section("Where we got lucky", incident.lucky)
    section("Lessons", incident.lessons)
    out.append("")
    return "\n".join(out)
