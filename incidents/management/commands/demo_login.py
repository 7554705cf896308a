from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Ensure the demo/demo login exists (only with DJANGO_DEBUG on)."

    def handle(self, *args, **options):
        if not settings.DEBUG:
            # A guessable login must never exist in production; say so and carry on.
            self.stderr.write("DJANGO_DEBUG is off: no demo/demo login is created.")
            return
        User = get_user_model()
        user, _ = User.objects.get_or_create(
            username="demo", defaults={"first_name": "Demo", "last_name": "Engineer",
                                       "email": "demo@example.com"},
        )  # fmt: skip
        user.is_active = True
        user.is_staff = True
        user.is_superuser = True
        user.set_password("demo")
        user.save()
        self.stdout.write(self.style.SUCCESS("Sign in at http://127.0.0.1:8000 as demo / demo"))
