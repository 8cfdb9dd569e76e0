"""Every request a run sends, built in one place from the prompt templates."""

from __future__ import annotations

from ..config.ensembles import ModelRole
from ..prompts import context_block, render
from ..providers import ChatRequest, Message
from .delimit import wrap_draft
from .result import Draft
from .review_parser import review_schema


def _request(role: ModelRole, system: str, user: str, *, default_temperature: float | None = None,
             json_schema: dict | None = None) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="system", content=system), Message(role="user", content=user)],
        temperature=role.temperature if role.temperature is not None else default_temperature,
        max_tokens=role.max_tokens,
        seed=role.seed,
        json_schema=json_schema,
    )


def drafts_block(drafts: list[Draft], nonce: str, *, with_weights: bool) -> str:
    """The drafts as delimited data blocks, in the order given."""
    parts = []
    for d in drafts:
        note = f' weight="{d.weight:.0%}"' if with_weights else ""
        parts.append(wrap_draft(d.text or "", d.label, nonce, note))
    return "\n\n".join(parts)


def draft_request(role: ModelRole, question: str, context: str | None) -> ChatRequest:
    user = render("draft_user", context_block=context_block(context), question=question)
    return _request(role, render("draft_system"), user)


def review_request(role: ModelRole, question: str, context: str | None, drafts: list[Draft], nonce: str) -> ChatRequest:
    """Drafts by label, scored at temperature 0 unless the role says otherwise, under a JSON schema."""
    labels = [d.label for d in drafts]
    user = render("review_user", context_block=context_block(context), question=question,
                  drafts=drafts_block(drafts, nonce, with_weights=False), labels=", ".join(labels))
    return _request(role, render("review_system", nonce=nonce), user, default_temperature=0.0,
                    json_schema=review_schema(labels))


def synthesis_request(role: ModelRole, question: str, context: str | None, ranked: list[Draft], nonce: str) -> ChatRequest:
    user = render("synthesis_user", context_block=context_block(context), question=question,
                  drafts=drafts_block(ranked, nonce, with_weights=True))
    return _request(role, render("synthesis_system", nonce=nonce), user)
