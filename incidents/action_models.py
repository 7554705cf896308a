"""Extra models of the action-items dashboard, if any. Imported at the end of models.py."""
