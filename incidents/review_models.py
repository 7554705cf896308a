"""Models of the review workflow (comments, meetings, history). Imported at the end of models.py."""
