"""Getting data in and out: one incident as Markdown or JSON, the staff import page, and the
chat-log import into an incident's timeline."""

from __future__ import annotations

import datetime as dt
import secrets
import tempfile
import time
import zoneinfo
from functools import lru_cache
from pathlib import Path

from django import forms
from django.contrib import messages
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods
from django.views.decorators.vary import vary_on_headers
from django_htmx.http import HttpResponseClientRedirect

from . import chatlog, exchange
from .models import Incident, TimelineEntry
from .viewutils import get_editable_incident, get_visible_incident, wants_partial

# --- Export -----------------------------------------------------------------------------------


@require_GET
def incident_export_markdown(request, slug):
    incident = get_visible_incident(request, slug, exchange.export_queryset())
    response = HttpResponse(
        exchange.incident_markdown(incident), content_type="text/markdown; charset=utf-8"
    )
    # A download, never a page: the browser must not render an author's text as HTML.
    response["Content-Disposition"] = f'attachment; filename="{incident.slug}.md"'
    return response


@require_GET
def incident_export_json(request, slug):
    incident = get_visible_incident(request, slug)
    queryset = Incident.objects.filter(pk=incident.pk)
    response = StreamingHttpResponse(
        exchange.iter_json(queryset), content_type="application/json; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{incident.slug}.json"'
    return response


# --- Staff import page ------------------------------------------------------------------------

IMPORT_MAX_BYTES = 50_000_000
IMPORT_KEEP_SECONDS = 24 * 60 * 60
SESSION_KEY = "debrief_import"
ERRORS_SHOWN = 200


def upload_dir() -> Path:
    """Where an uploaded file waits between its preview and the confirm step."""
    path = Path(tempfile.gettempdir()) / "debrief-imports"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _forget_old_uploads() -> None:
    cutoff = time.time() - IMPORT_KEEP_SECONDS
    for path in upload_dir().glob("*.json"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            pass


class ImportForm(forms.Form):
    file = forms.FileField(
        label="debrief/1 JSON file",
        help_text=f"Made by export_incidents or another tool (up to "
        f"{IMPORT_MAX_BYTES // 1_000_000} MB here; larger files: the import_incidents command).",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,application/json"}),
    )
    update = forms.BooleanField(required=False, label="Replace incidents whose slug already exists")
    create_users = forms.BooleanField(
        required=False, label="Create people who have no account yet (inactive, no password)"
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size / 1_000_000:.1f} MB; this page takes up to "
                f"{IMPORT_MAX_BYTES // 1_000_000} MB. Use `python manage.py import_incidents`."
            )
        return upload


def _require_staff(request) -> None:
    if not request.user.is_staff:
        raise PermissionDenied("Only staff may import incidents.")


def _preview(path: Path, *, update: bool, create_users: bool):
    """(report, document_error) for the file, writing nothing."""
    with path.open("rb") as stream:
        try:
            return exchange.validate_file(stream, update=update, create_users=create_users), ""
        except exchange.DocumentError as error:
            return None, str(error)


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def import_page(request):
    _require_staff(request)
    template = "incidents/exchange/import.html" + ("#import" if wants_partial(request) else "")
    context = {"form": ImportForm(), "max_mb": IMPORT_MAX_BYTES // 1_000_000}
    step = request.POST.get("step", "")
    pending = request.session.get(SESSION_KEY)

    if request.method == "POST" and step == "preview":
        form = ImportForm(request.POST, request.FILES)
        context["form"] = form
        if not form.is_valid():
            return render(request, template, context)
        _forget_old_uploads()
        _discard_pending(request)
        token = secrets.token_urlsafe(18)
        path = upload_dir() / f"{token}.json"
        with path.open("wb") as out:
            for chunk in form.cleaned_data["file"].chunks():
                out.write(chunk)
        pending = {
            "token": token,
            "name": form.cleaned_data["file"].name[:200],
            "update": form.cleaned_data["update"],
            "create_users": form.cleaned_data["create_users"],
        }
        request.session[SESSION_KEY] = pending
        report, document_error = _preview(
            path, update=pending["update"], create_users=pending["create_users"]
        )
        context.update(_preview_context(pending, report, document_error))
        return render(request, template, context)

    if request.method == "POST" and step in ("confirm", "cancel"):
        path = _pending_path(pending, request.POST.get("token", ""))
        if path is None:
            context["stale"] = True
            return render(request, template, context)
        if step == "cancel":
            _discard_pending(request)
            messages.info(request, "Import cancelled; nothing was written.")
            return _done(request, reverse("import_incidents"))
        with path.open("rb") as stream:
            try:
                report = exchange.import_file(
                    stream, update=pending["update"], create_users=pending["create_users"]
                )
                document_error = ""
            except (exchange.DocumentError, exchange.ImportAborted) as error:
                report, document_error = None, str(error)
        if report is None or not report.ok:
            # The database changed since the preview; show what is wrong now.
            context.update(_preview_context(pending, report, document_error))
            return render(request, template, context)
        _discard_pending(request)
        messages.success(request, report.summary())
        return _done(request, reverse("incident_list"))

    if request.method == "POST":
        context["form"] = ImportForm(request.POST, request.FILES)
        context["form"].add_error(None, "Choose a file and press Preview.")
    return render(request, template, context)


def _preview_context(pending, report, document_error) -> dict:
    return {
        "pending": pending,
        "report": report,
        "document_error": document_error,
        "errors_shown": report.errors[:ERRORS_SHOWN] if report else [],
        "errors_hidden": max(0, len(report.errors) - ERRORS_SHOWN) if report else 0,
    }


def _pending_path(pending, token: str) -> Path | None:
    if not pending or not token or not secrets.compare_digest(pending.get("token", ""), token):
        return None
    path = upload_dir() / f"{pending['token']}.json"
    return path if path.is_file() else None


def _discard_pending(request) -> None:
    pending = request.session.pop(SESSION_KEY, None)
    if pending and pending.get("token"):
        (upload_dir() / f"{pending['token']}.json").unlink(missing_ok=True)


def _done(request, url: str):
    if wants_partial(request):
        return HttpResponseClientRedirect(url)
    return redirect(url)


# --- Chat log into the timeline ---------------------------------------------------------------


@lru_cache(maxsize=1)
def zone_choices() -> list[tuple[str, str]]:
    names = sorted(
        z
        for z in zoneinfo.available_timezones()
        if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/", "right/"))
    )
    return [("UTC", "UTC"), *((name, name.replace("_", " ")) for name in names)]


class ChatLogForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="Chat log file",
        help_text="A Slack channel export (.zip, or one day's .json) or a plain-text transcript.",
        widget=forms.ClearableFileInput(attrs={"accept": ".json,.zip,.txt,.log,text/plain"}),
    )
    text = forms.CharField(
        required=False,
        label="…or paste the log",
        widget=forms.Textarea(
            attrs={"rows": 8, "placeholder": "[10:42] alice: restarted the primary"}
        ),
        help_text="One message per line, starting with its time: “[10:42] alice: …” or "
        "“2026-03-02 10:42 alice: …”.",
    )
    zone = forms.ChoiceField(
        label="Time zone of the log",
        help_text="Times in a transcript are read in this zone and stored in UTC. Slack "
        "exports carry their own times.",
    )
    day = forms.DateField(
        label="Day of lines without a date",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        help_text="Time-only lines (“[10:42] …”) happened on this day; a log that runs past "
        "midnight moves on to the next day by itself.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["zone"].choices = zone_choices()

    def clean(self):
        cleaned = super().clean()
        upload, text = cleaned.get("file"), cleaned.get("text", "")
        if upload and text.strip():
            raise forms.ValidationError("Upload a file or paste the log, not both.")
        if not upload and not text.strip():
            raise forms.ValidationError("Upload a chat log file or paste the log.")
        if upload and upload.size > chatlog.MAX_BYTES:
            self.add_error(
                "file",
                f"The file is {upload.size / 1_000_000:.1f} MB; the limit is "
                f"{chatlog.MAX_BYTES // 1_000_000} MB. Trim it to the incident's hours.",
            )
        if text and len(text.encode()) > chatlog.MAX_BYTES:
            self.add_error("text", f"The pasted log is over {chatlog.MAX_BYTES // 1_000_000} MB.")
        return cleaned


PAYLOAD_MAX_CHARS = 2_000_000


def _payload_salt(incident, user) -> str:
    return f"debrief.chatlog:{incident.pk}:{user.pk}"


@require_http_methods(["GET", "POST"])
@vary_on_headers("HX-Request")
def timeline_import(request, slug):
    incident = get_editable_incident(request, slug)
    template = "incidents/exchange/timeline_import.html" + (
        "#chatlog" if wants_partial(request) else ""
    )
    zone_name = timezone.get_current_timezone_name()
    if zone_name not in dict(zone_choices()):
        zone_name = "UTC"
    start_day = (
        timezone.localtime(incident.started_at, zoneinfo.ZoneInfo(zone_name)).date()
        if incident.started_at
        else timezone.localdate()
    )
    context = {
        "incident": incident,
        "form": ChatLogForm(initial={"zone": zone_name, "day": start_day}),
        "kinds": TimelineEntry.Kind.choices,
        "max_mb": chatlog.MAX_BYTES // 1_000_000,
        "max_messages": chatlog.MAX_MESSAGES,
    }
    step = request.POST.get("step", "preview")

    if request.method == "POST" and step == "preview":
        form = ChatLogForm(request.POST, request.FILES)
        context["form"] = form
        if not form.is_valid():
            return render(request, template, context)
        upload = form.cleaned_data["file"]
        data = upload.read() if upload else form.cleaned_data["text"].encode()
        zone = zoneinfo.ZoneInfo(form.cleaned_data["zone"])
        try:
            log = chatlog.parse_chat_log(
                data, zone=zone, day=form.cleaned_data["day"],
                filename=upload.name if upload else "",
            )  # fmt: skip
        except chatlog.ChatLogError as error:
            form.add_error("file" if upload else "text", str(error))
            return render(request, template, context)
        rows = _rows(log.messages, chatlog.existing_keys(incident))
        payload = signing.dumps(
            [[format_at(m.at), m.author, m.text, m.kind] for m in log.messages],
            salt=_payload_salt(incident, request.user),
            compress=True,
        )
        if len(payload) > PAYLOAD_MAX_CHARS:
            # The preview carries the messages back in the form; Django refuses a form body
            # over 2.5 MB (DATA_UPLOAD_MAX_MEMORY_SIZE), so say so now rather than fail later.
            form.add_error(
                "file" if upload else "text",
                "The messages are too long to import at once; split the log in two.",
            )
            return render(request, template, context)
        context.update(
            {"log": log, "rows": rows, "payload": payload, "zone_name": form.cleaned_data["zone"]}
        )
        return render(request, template, context)

    if request.method == "POST" and step == "import":
        try:
            stored = signing.loads(
                request.POST.get("payload", ""),
                salt=_payload_salt(incident, request.user),
                max_age=24 * 60 * 60,
            )
        except signing.BadSignature:
            context["stale"] = True
            return render(request, template, context)
        try:
            stored = [
                chatlog.ChatMessage(
                    at=dt.datetime.fromisoformat(at), author=author, text=text, kind=kind
                )
                for at, author, text, kind in stored
            ]
        except (TypeError, ValueError):
            context["stale"] = True
            return render(request, template, context)
        picked = set(request.POST.getlist("pick"))
        entries = [
            (message.at, _posted_kind(request, index, message.kind), message.entry_text)
            for index, message in enumerate(stored)
            if str(index) in picked
        ]
        if not entries:
            context.update(_rebuild_preview(stored, request, incident))
            context["pick_error"] = "Tick at least one message to add to the timeline."
            return render(request, template, context)
        # A second click on Add (or the same preview sent twice) must not add them again.
        seen = chatlog.existing_keys(incident)
        new = [entry for entry in entries if (entry[0], entry[2]) not in seen]
        if new:
            chatlog.add_timeline_entries(incident=incident, entries=new)
        skipped = len(entries) - len(new)
        messages.success(
            request,
            f"Added {len(new)} timeline entr{'ies' if len(new) != 1 else 'y'} from the chat log"
            + (f" ({skipped} already in the timeline)." if skipped else "."),
        )
        return _done(request, incident.get_absolute_url() + "#timeline")

    return render(request, template, context)


def format_at(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat()


def _posted_kind(request, index: int, guessed: str) -> str:
    kind = request.POST.get(f"kind-{index}", guessed)
    return kind if kind in TimelineEntry.Kind.values else guessed


def _rows(messages_, seen, request=None) -> list[dict]:
    """One preview row per message. Messages already in the timeline (same time and text)
    are marked and left unticked, so importing a log twice adds nothing twice."""
    rows = []
    for index, message in enumerate(messages_):
        duplicate = (message.at, message.entry_text) in seen
        rows.append(
            {
                "index": index,
                "message": message,
                "duplicate": duplicate,
                "checked": not duplicate and request is None,
                "kind": _posted_kind(request, index, message.kind) if request else message.kind,
            }
        )
    return rows


def _rebuild_preview(stored, request, incident) -> dict:
    """The preview again from the signed payload, keeping the kinds the author chose."""
    zone_name = request.POST.get("zone_name", "UTC")
    if zone_name not in dict(zone_choices()):
        zone_name = "UTC"
    return {
        "rows": _rows(stored, chatlog.existing_keys(incident), request),
        "payload": request.POST.get("payload", ""),
        "zone_name": zone_name,
        "log": None,
    }
