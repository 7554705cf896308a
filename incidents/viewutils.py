"""Small helpers every view module shares."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404

from .models import Incident

PAGE_SIZE = 25


def wants_partial(request) -> bool:
    """True for an htmx swap; false for boosted navigation and history restores, which need
    the whole page (otherwise the back button shows a bare fragment)."""
    htmx = request.htmx
    return bool(htmx) and not htmx.boosted and not htmx.history_restore_request


def query_string_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


def get_visible_incident(request, slug, queryset=None):
    """The incident, or 404 when there is none or this person may not read it.

    Private incidents answer exactly like missing ones, so a 403 never confirms that a
    security or HR write-up with this slug exists."""
    queryset = queryset if queryset is not None else Incident.objects.all()
    incident = get_object_or_404(queryset, slug=slug)
    if not incident.can_view(request.user):
        raise Http404("No incident matches the given query.")
    return incident


def get_editable_incident(request, slug, queryset=None):
    """The incident, or 404 for those who may not read it and 403 for readers who are not
    an author, a reviewer or staff."""
    incident = get_visible_incident(request, slug, queryset)
    if not incident.can_edit(request.user):
        raise PermissionDenied("Only the write-up's authors and reviewers may edit it.")
    return incident


class FromNearerEnd:
    """A queryset for `Paginator` that reads deep pages from the nearer end.

    OFFSET makes the database walk every row before the page, so the last page of 10,000
    incidents walked 9,975 rows. Past the middle we run the reversed ordering with the small
    offset counted from the end and flip the rows back, so no page walks more than half."""

    def __init__(self, queryset):
        self.queryset = queryset
        self._count = None

    def count(self) -> int:
        if self._count is None:
            self._count = self.queryset.count()
        return self._count

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, key):
        if not isinstance(key, slice):
            return self.queryset[key]
        total = self.count()
        start, stop = key.start or 0, min(key.stop if key.stop is not None else total, total)
        if start <= total // 2 or start >= stop:
            return self.queryset[start:stop]
        rows = list(self.queryset.reverse()[total - stop : total - start])
        rows.reverse()
        return rows
