"""Extra models of the action-items dashboard. Imported at the end of models.py."""

from django.conf import settings
from django.db import models
from django.utils import timezone

__all__ = ["EscalationDigest"]


class EscalationDigest(models.Model):
    """One weekly digest of escalated action items to one team lead.

    Recorded before the e-mail goes out and marked sent in the same transaction as the sending,
    like `Reminder`: the unique constraint makes a re-run in the same week send nothing, and a
    crash leaves the row unsent so the next run delivers it.
    """

    team = models.ForeignKey("incidents.Team", on_delete=models.CASCADE, related_name="digests")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="escalation_digests"
    )
    week = models.DateField(help_text="Monday of the week the digest covers.")
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["team", "recipient", "week"], name="one_digest_per_team_lead_week"
            )
        ]
        indexes = [models.Index(fields=["sent_at"], name="digest_unsent")]

    def __str__(self):
        return f"Escalation digest for {self.team} to {self.recipient}, week of {self.week}"
