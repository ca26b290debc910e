"""The one exception commands raise on purpose: bad input from the user (exit 2, one line)."""

from __future__ import annotations


class BadInput(ValueError):
    """A value the user gave that devcheck cannot use; the message names it and what is allowed."""
