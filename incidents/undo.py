"""Undo for every delete: nothing is removed from the UI without a way back.

Deleting moves the object — with everything that would cascade with it, and its many-to-many
links — into the trash (`TrashEntry`): the rows are serialised with Django's serialisers and
then deleted for real, so every query, count, export and search index simply stops seeing
them, with no `deleted_at` filter to forget anywhere. Restoring inserts the same rows again
with their old primary keys (database triggers and signals see ordinary inserts). The trash
keeps things for 30 days (`TRASH_DAYS`); `purge_expired()` drops older entries (run it
daily).

How a feature deletes something
-------------------------------
::

    from incidents import undo

    @require_POST
    def entry_delete(request, slug, pk):
        incident = get_editable_incident(request, slug)
        entry = get_object_or_404(incident.timeline_entries, pk=pk)
        label = f"Timeline entry {timezone.localtime(entry.at):%H:%M}"
        try:
            trashed = undo.soft_delete(entry, by=request.user, label=label,
                                       next_url=incident.get_absolute_url())
        except undo.UndoError as error:      # something PROTECTs it; nothing was deleted
            return HttpResponse(error.message, status=409)
        if wants_partial(request):
            response = render(request, "…#timeline", context)
            return undo.announce(request, trashed, response)  # + the Undo toast (htmx)
        undo.announce(request, trashed)  # a message with an Undo button on the next page
        return redirect(incident)

API
---
- `soft_delete(obj, *, by, label=None, next_url="") -> TrashEntry` — atomic. Raises
  `UndoError` (code "protected") when something protects the object; nothing is deleted
  then. `label` is what people read; `next_url` is where Undo without JavaScript returns
  to. Like Django's `delete()`, it sets `obj.pk` to None. The edit history records each
  deleted row with who deleted it, and many-to-many rows deleted this way (a reviewer
  removed) show as a change of their owner.
- `announce(request, trashed, response=None, *, reload=False)` — with an htmx `response`:
  appends an out-of-band toast ("… moved to the trash. [Undo]", inserted at the top of
  `#main`) and returns the response; without: adds a Django message carrying the same Undo
  button. After an Undo through htmx the page gets the `debrief:restored` event — put
  `hx-get="<your panel's URL>" hx-trigger="debrief:restored from:body"` on a panel that should
  refresh itself — or, with `reload=True`, the whole page reloads.
- `restore(token_or_entry, *, by) -> object` — atomic, at most once; raises `UndoError`
  with a message for people and a `code`: "forbidden" (not theirs, or no such token: answer
  404), "done" (already restored), "gone" (older than 30 days, or what it belonged to is
  itself in the trash), "conflict" (something took its place, e.g. its slug). Objects with
  a `restored_from_trash(*, by)` method get it called afterwards (the review meeting
  re-sends its invitation that way).
- `may_restore(user, entry)`: staff, the person who deleted it, and the authors of its
  write-up when it was deleted. `restorable_by(user)`: what the Trash page lists.
- `purge_expired(now=None) -> int`: forget entries older than 30 days.
- URLs (in `incidents.review_views`): POST `/undo/<token>/` (Undo and Restore; a plain post
  redirects to `next_url`), GET `/trash/` (the Trash page).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.apps import apps
from django.contrib import messages
from django.core import serializers
from django.db import IntegrityError, router, transaction
from django.db.models import ProtectedError, Q, QuerySet, RestrictedError
from django.db.models.deletion import Collector
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from .review_models import TRASH_DAYS, TrackedHistory, TrashEntry

__all__ = [
    "TRASH_DAYS",
    "UndoError",
    "announce",
    "may_restore",
    "purge_expired",
    "restorable_by",
    "restore",
    "soft_delete",
    "undo_form_html",
]


class UndoError(Exception):
    """A delete or restore that cannot happen; the message is for people."""

    def __init__(self, message: str, *, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.code = code  # "forbidden", "gone", "done", "conflict", "protected", "invalid"


class _CollectEverything(Collector):
    """Django's delete collector, told to load every row it will delete (no fast deletes), so
    each one can be written to the trash first and gets its post_delete signal (history)."""

    def can_fast_delete(self, objs, from_field=None):
        return False


def _label_for(obj) -> str:
    name = obj._meta.verbose_name
    return f"{name[:1].upper()}{name[1:]} “{str(obj)[:120]}”"


def _incident_of(obj):
    from .models import Incident

    if isinstance(obj, Incident):
        return obj
    incident_id = getattr(obj, "incident_id", None)
    if incident_id is None:
        return None
    return Incident.objects.filter(pk=incident_id).only("pk", "slug", "title", "visibility").first()


def _m2m_owner(row):
    """For a row of an auto-created many-to-many table: (owning object's model, its pk, the
    many-to-many field). None for any other row."""
    through = type(row)
    owner_model = through._meta.auto_created
    if not owner_model:
        return None
    for field in owner_model._meta.many_to_many:
        if field.remote_field.through is through:
            return owner_model, getattr(row, f"{field.m2m_field_name()}_id"), field
    return None


def _record_owner_changes(rows, *, skip: set, by, reason: str) -> None:
    """Many-to-many rows deleted or inserted directly send no m2m_changed signal; record a
    history snapshot of each tracked owner so the change shows in the edit history."""
    owners = defaultdict(set)
    for row in rows:
        found = _m2m_owner(row)
        if found is None:
            continue
        owner_model, owner_pk, field = found
        records = TrackedHistory.by_model.get(owner_model)
        if records is None or field.name not in {
            f.name for f in records.get_m2m_fields_from_model(owner_model)
        }:
            continue
        if (owner_model, owner_pk) not in skip:
            owners[owner_model].add(owner_pk)
    for owner_model, pks in owners.items():
        for owner in owner_model._base_manager.filter(pk__in=pks):
            owner._history_user = by
            owner._change_reason = reason[:100]
            TrackedHistory.by_model[owner_model].create_historical_record(owner, "~")


@transaction.atomic
def soft_delete(obj, *, by, label: str | None = None, next_url: str = "") -> TrashEntry:
    """Move `obj`, and everything that would be deleted with it, to the trash."""
    label = (label or _label_for(obj))[:300]
    using = router.db_for_write(type(obj), instance=obj)
    collector = _CollectEverything(using=using, origin=obj)
    try:
        collector.collect([obj])
    except (ProtectedError, RestrictedError) as error:
        blockers = sorted({str(o._meta.verbose_name_plural) for o in error.args[1]})
        raise UndoError(
            f"{label} can't be deleted while {', '.join(blockers)} depend on it.",
            code="protected",
        ) from error

    # Reload every row whole: the collector may have loaded only the key columns.
    rows = []
    for model, instances in collector.data.items():
        pks = [instance.pk for instance in instances]
        rows.extend(model._base_manager.using(using).filter(pk__in=pks).order_by("pk"))
    field_updates = []  # rows whose foreign key the delete sets to NULL (on_delete=SET_NULL)
    for (field, value), batches in collector.field_updates.items():
        for batch in batches:
            if isinstance(batch, QuerySet):
                model, pks = batch.model, list(batch.values_list("pk", flat=True))
            else:
                model, pks = type(batch[0]), [item.pk for item in batch]
            for row in (
                model._base_manager.using(using).filter(pk__in=pks).values("pk", field.attname)
            ):
                field_updates.append(
                    {"model": model._meta.label_lower, "pk": row["pk"], "field": field.attname,
                     "value": row[field.attname], "set_to": value}
                )  # fmt: skip

    incident = _incident_of(obj)
    restorers = {by.pk} if by is not None and by.pk else set()
    if incident is not None:
        from .models import Incident

        restorers |= set(
            Incident.authors.through.objects.filter(incident_id=incident.pk).values_list(
                "user_id", flat=True
            )
        )
    entry = TrashEntry.objects.create(
        model_label=obj._meta.label_lower,
        object_pk=str(obj.pk),
        label=label,
        incident_pk=incident.pk if incident else None,
        incident_title=incident.title if incident else "",
        incident_slug=incident.slug if incident else "",
        private=bool(incident) and incident.visibility != Incident.Visibility.EVERYONE,
        payload={
            "objects": _jsonable(
                serializers.serialize("python", rows, fields=_concrete_field_names(rows))
            ),
            "field_updates": _jsonable(field_updates),
        },
        next_url=next_url[:500],
        deleted_by=by if by is not None and by.pk else None,
    )
    entry.restorers.set(restorers)
    reason = f"Moved to the trash: {label}"[:100]
    for _, instance in collector.instances_with_model():
        instance._history_user = by
        instance._change_reason = reason
    deleted_keys = {(type(row), row.pk) for row in rows}
    collector.delete()
    _record_owner_changes(rows, skip=deleted_keys, by=by, reason=reason)
    return entry


def _concrete_field_names(rows) -> list[str]:
    """Every stored column of every model in `rows`, without many-to-many fields: the link
    rows are in the trash themselves, so each link is restored exactly once."""
    names = set()
    for row in rows:
        names.update(f.name for f in row._meta.concrete_fields if not f.primary_key)
    return sorted(names)


def _jsonable(value):
    """Plain JSON values, keeping datetimes to the microsecond (DjangoJSONEncoder would cut
    them to milliseconds, and a restored row should be the row that was deleted)."""
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # Decimal, UUID: their fields parse the string back


def may_restore(user, entry: TrashEntry) -> bool:
    if not (user and user.is_authenticated and user.is_active):
        return False
    if user.is_superuser or entry.restorers.filter(pk=user.pk).exists():
        return True
    # Staff restore anyone's deletes, except from a private write-up that does not list them.
    return not entry.private and (user.is_staff or user.has_perm("incidents.restore_any_trash"))


def restorable_by(user):
    """The trash entries this person may restore now, newest first (the Trash page)."""
    entries = TrashEntry.objects.restorable().select_related("deleted_by")
    if user.is_superuser:
        return entries
    mine = Q(
        pk__in=TrashEntry.restorers.through.objects.filter(user_id=user.pk).values("trashentry_id")
    )
    if user.is_staff or user.has_perm("incidents.restore_any_trash"):
        return entries.filter(Q(private=False) | mine)
    return entries.filter(mine)


def _missing_targets(objects, restoring: set) -> dict:
    """For each restored row, the foreign keys whose target neither exists nor comes back
    with it: {(model, pk): [field, …]}."""
    wanted = defaultdict(set)  # target model -> ids
    for obj in objects:
        for field in obj._meta.concrete_fields:
            if field.is_relation and field.many_to_one:
                value = getattr(obj, field.attname)
                target = field.related_model._meta.concrete_model
                if value is not None and (target, value) not in restoring:
                    wanted[target].add(value)
    existing = {
        model: set(model._base_manager.filter(pk__in=ids).values_list("pk", flat=True))
        for model, ids in wanted.items()
    }
    missing = defaultdict(list)
    for obj in objects:
        for field in obj._meta.concrete_fields:
            if field.is_relation and field.many_to_one:
                value = getattr(obj, field.attname)
                target = field.related_model._meta.concrete_model
                if (
                    value is not None
                    and (target, value) not in restoring
                    and value not in existing[target]
                ):
                    missing[(type(obj), obj.pk)].append(field)
    return missing


@transaction.atomic
def restore(token_or_entry, *, by):
    """Put a trashed object back, with everything that went with it. Returns the object."""
    token = getattr(token_or_entry, "token", token_or_entry)
    entry = TrashEntry.objects.select_for_update().filter(token=token).first()
    if entry is None or not may_restore(by, entry):
        raise UndoError("There is nothing to restore here.", code="forbidden")
    if entry.restored_at is not None:
        raise UndoError(f"{entry.label} was already restored.", code="done")
    if entry.is_expired:
        raise UndoError(
            f"{entry.label} was deleted more than {TRASH_DAYS} days ago and can't be restored.",
            code="gone",
        )
    # Claimed with a conditional update, so two clicks on Undo restore it once.
    claimed = TrashEntry.objects.filter(pk=entry.pk, restored_at__isnull=True).update(
        restored_at=timezone.now(), restored_by=by
    )
    if not claimed:
        raise UndoError(f"{entry.label} was already restored.", code="done")

    objects = [d.object for d in serializers.deserialize("python", entry.payload["objects"])]
    restoring = {(type(o)._meta.concrete_model, o.pk) for o in objects}
    missing = _missing_targets(objects, restoring)
    links, rows = [], []
    for obj in objects:
        fields = missing.get((type(obj), obj.pk))
        if type(obj)._meta.auto_created:
            if not fields:  # a link to something that is gone now is simply not restored
                links.append(obj)
            continue
        for field in fields or ():
            if not field.null:
                where = entry.incident_title or "what it belonged to"
                raise UndoError(
                    f"{entry.label} can't be restored: “{where}” is not there any more. "
                    "Restore that first (see the Trash page).",
                    code="gone",
                )
            setattr(obj, field.attname, None)  # e.g. an owner whose account was removed
        rows.append(obj)

    reason = "Restored from the trash"
    try:
        with transaction.atomic():
            # Links first (foreign keys are checked at commit), so the history snapshot each
            # restored object records already lists its many-to-many links.
            for obj in links + rows:
                obj._history_user = by
                obj._change_reason = reason
                obj.save(force_insert=True)
            for update in entry.payload.get("field_updates", []):
                model = apps.get_model(update["model"])
                model._base_manager.filter(
                    pk=update["pk"], **{update["field"]: update["set_to"]}
                ).update(**{update["field"]: update["value"]})
    except IntegrityError as error:
        raise UndoError(
            f"{entry.label} can't be restored: something that replaced it is in its place "
            "now. Remove that first, then try again.",
            code="conflict",
        ) from error
    _record_owner_changes(links, skip=restoring, by=by, reason=reason)
    for obj in rows:
        hook = getattr(obj, "restored_from_trash", None)
        if callable(hook):
            hook(by=by)
    root_model = apps.get_model(entry.model_label)
    for obj in links + rows:
        if isinstance(obj, root_model) and str(obj.pk) == entry.object_pk:
            return obj
    return rows[0] if rows else None


def purge_expired(*, now: dt.datetime | None = None) -> int:
    """Forget trash older than TRASH_DAYS. Returns how many entries went."""
    _, per_model = TrashEntry.objects.expired(now).delete()
    return per_model.get(TrashEntry._meta.label, 0)


def undo_form_html(request, entry: TrashEntry, *, reload: bool = False) -> str:
    """The Undo button: a real form (works without JavaScript) that htmx posts in place."""
    url = reverse("undo", args=[entry.token])
    return format_html(
        '<form class="undo-form" method="post" action="{url}" hx-post="{url}" '
        'hx-target="closest .undo" hx-swap="outerHTML">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{csrf}">'
        '{reload_field}<button type="submit" class="button small">Undo</button></form>',
        url=url,
        csrf=get_token(request),
        reload_field=format_html('<input type="hidden" name="reload" value="1">') if reload else "",
    )


def _toast_html(request, entry: TrashEntry, *, reload: bool) -> str:
    return format_html(
        '<div class="undo-toast undo" role="status" id="undo-{token}">'
        "<span>{label} moved to the trash.</span> {form} "
        '<a href="{trash}">Trash</a></div>',
        token=entry.token,
        label=entry.label,
        form=undo_form_html(request, entry, reload=reload),
        trash=reverse("trash"),
    )


def announce(request, entry: TrashEntry, response=None, *, reload: bool = False):
    """Tell the person what went to the trash and offer Undo (see the module docstring)."""
    if response is not None:
        toast = format_html(
            '<div hx-swap-oob="afterbegin:#main">{}</div>',
            _toast_html(request, entry, reload=reload),
        )
        response.content = response.content + toast.encode()
        return response
    messages.success(
        request,
        format_html(
            "{} moved to the trash. {}", entry.label, undo_form_html(request, entry, reload=reload)
        ),
        extra_tags="undo",
    )
    return None
