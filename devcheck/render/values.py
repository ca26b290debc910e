"""How a raw value reads in a table cell (JSON keeps the raw value)."""

from __future__ import annotations

from typing import Any


def show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if value == 0 or 1e-3 <= abs(value) < 1e3:
            return f"{value:.3g}"
        return f"{value:,.0f}" if abs(value) >= 1e3 else f"{value:.2e}"
    if isinstance(value, list | tuple):
        return ", ".join(show(v) for v in value) if value else "none"
    if isinstance(value, dict):
        return ", ".join(f"{k}={show(v)}" for k, v in value.items())
    return str(value)


def field_text(f) -> str:
    """A field's value, with why it is n/a or what is off when it is not plainly ok."""
    text = show(f.value) if f.value is not None or not f.note else ""
    if f.note:
        text = f"{text} ({f.note})" if text else f"{f.status}: {f.note}"
    return text


TABLE_LIMIT = 160  # characters of one value in a table cell; JSON and Markdown keep values whole


def shorten(text: str, limit: int = TABLE_LIMIT) -> str:
    """A long value (a 1,000-character NVIDIA_REQUIRE_CUDA, a long LD_LIBRARY_PATH) would flood a table."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 40]}… ({len(text):,} characters; --json shows all)"
