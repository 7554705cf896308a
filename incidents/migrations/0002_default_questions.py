from django.db import migrations

DEFAULT_QUESTIONS = [
    ("What did you notice first, and what did it tell you?",
     "The first signal: an alert, a graph, a customer message. What did you think it meant?"),
    ("What made the actions taken make sense at the time?",
     "Describe what people knew, saw and expected then — not what we know now."),
    ("What information would have helped, and where was it?",
     "A dashboard, a runbook, a person who knew. Was it findable under pressure?"),
    ("Where did people ask for help, and how did that go?",
     "Who was paged or pinged, how long it took, what made it easy or hard to ask."),
    ("What surprised us?",
     "Behaviour of the system or the organisation that didn't match our mental model."),
    ("What pressures were people under — time, workload, fatigue, competing priorities?",
     "Deadlines, a long on-call shift, several incidents at once, a launch the same week."),
    ("How could we have cut the time to detect in half?",
     "Signals that existed but were not seen, and signals that didn't exist yet."),
]  # fmt: skip


def add_questions(apps, schema_editor):
    GuidedQuestion = apps.get_model("incidents", "GuidedQuestion")
    for position, (prompt, help_text) in enumerate(DEFAULT_QUESTIONS, start=1):
        GuidedQuestion.objects.get_or_create(
            prompt=prompt, defaults={"help_text": help_text, "position": position * 10}
        )


def remove_questions(apps, schema_editor):
    GuidedQuestion = apps.get_model("incidents", "GuidedQuestion")
    GuidedQuestion.objects.filter(prompt__in=[p for p, _ in DEFAULT_QUESTIONS]).delete()


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]
    operations = [migrations.RunPython(add_questions, remove_questions)]
