"""Prompt templates, kept as text files so a reader sees each one whole.

Templates use `$name` placeholders (string.Template), so JSON braces in them need no escaping.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

PROMPTS_DIR = Path(__file__).parent


@cache
def template(name: str) -> Template:
    return Template((PROMPTS_DIR / f"{name}.txt").read_text(encoding="utf-8"))


def render(name: str, **values: str) -> str:
    return template(name).substitute(values).strip()


def context_block(context: str | None) -> str:
    return render("context_block", context=context.strip()) + "\n" if context and context.strip() else ""
