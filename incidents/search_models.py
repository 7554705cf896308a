"""Models of the search index. Imported at the end of models.py."""
