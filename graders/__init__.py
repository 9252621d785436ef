"""kgrade: grading and feedback for Jupyter notebooks that teach Keras."""

from __future__ import annotations

__version__ = "0.1.0"
