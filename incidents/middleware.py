import logging
import zoneinfo

from django.db import DatabaseError, InterfaceError
from django.http import HttpResponse
from django.template import loader
from django.utils import timezone

logger = logging.getLogger("debrief")


class UserTimezoneMiddleware:
    """Shows and reads times in the signed-in person's zone (their profile), UTC otherwise."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone_name = request.session.get("timezone") if hasattr(request, "session") else None
        if zone_name:
            try:
                timezone.activate(zoneinfo.ZoneInfo(zone_name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                timezone.deactivate()
        else:
            timezone.deactivate()
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """When the database does not answer, people get a calm 503 page, never a traceback.

    Rendered from a template that needs neither the database nor a request context.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (DatabaseError, InterfaceError)) and _database_down(exception):
            logger.error("Database unavailable: %s", exception)
            response = HttpResponse(loader.get_template("503.html").render(), status=503)
            response["Retry-After"] = "30"
            return response
        return None


def _database_down(exception) -> bool:
    """Connection-level failures only; a constraint error is a bug to see, not an outage.
    PostgreSQL reports a read-only server (a replica after fail-over, a full disk) as an
    InternalError, SQLite as an OperationalError."""
    from django.db import InternalError, OperationalError

    if isinstance(exception, InterfaceError):
        return True
    if not isinstance(exception, (OperationalError, InternalError)):
        return False
    text = str(exception).lower()
    return any(
        marker in text
        for marker in (
            "connection", "could not connect", "server closed", "unable to open database",
            "database is locked", "terminating", "timeout", "read-only", "readonly",
            "disk is full", "no space",
        )
    )  # fmt: skip
