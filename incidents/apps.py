from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "incidents"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        user_logged_in.connect(remember_timezone, dispatch_uid="debrief_remember_timezone")


def remember_timezone(sender, request, user, **kwargs):
    """Keep the person's zone in the session, so pages need no extra query to show local times."""
    from .models import Profile

    profile = Profile.objects.filter(user=user).only("timezone").first()
    if request is not None and hasattr(request, "session"):
        request.session["timezone"] = profile.timezone if profile else "UTC"
