"""One module per exercise, each defining ``RUBRIC``."""
