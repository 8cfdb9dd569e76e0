"""Prompt templates, kept as text files so a reader sees each one whole.

Templates use `$name` placeholders (string.Template), so JSON braces in them need no escaping.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).parent


@cache
def template(name: str) -> Template:
    return Template((PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8"))


def names() -> list[str]:
    """Every prompt an ensemble's `[prompts]` table may override."""
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.txt"))


def placeholders(text_or_name: str | Template) -> set[str]:
    """The `$name` placeholders of a template (a shipped one by name, or a Template)."""
    t = text_or_name if isinstance(text_or_name, Template) else template(text_or_name)
    return set(t.get_identifiers())


def render(name: str, overrides: Mapping[str, str] | None = None, **values: str) -> str:
    """A prompt filled in; `overrides` (an ensemble's `[prompts]`) replaces the shipped text by name."""
    if overrides and name in overrides:
        return Template(overrides[name]).substitute(values).strip()
    return template(name).substitute(values).strip()


def context_block(context: str | None) -> str:
    return render("context_block", context=context.strip()) + "\n" if context and context.strip() else ""
