import zoneinfo

from django.utils import timezone


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
