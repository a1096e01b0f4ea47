"""The service's refusals that are not access decisions; api/app.py answers each with its status code."""

from __future__ import annotations


class NotFound(Exception):
    """404 with the sentence."""


class Conflict(Exception):
    """409 with the sentence."""


class TooLarge(Exception):
    """413 with the sentence."""


class Unavailable(Exception):
    """503 with the sentence: the server cannot answer until an operator acts."""
