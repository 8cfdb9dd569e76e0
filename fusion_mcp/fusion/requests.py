"""Every request a run sends, built in one place from the prompt templates."""

from __future__ import annotations

from ..config.ensembles import ModelRole
from ..prompts import context_block, render
from ..providers import ChatRequest, Message
from .delimit import clean_data, wrap_draft
from .result import Analysis, Draft, Source
from .review_parser import review_schema
from .sources import sources_block


def _request(role: ModelRole, system: str, user: str, *, default_temperature: float | None = None,
             json_schema: dict | None = None) -> ChatRequest:
    return ChatRequest(
        messages=[Message(role="system", content=system), Message(role="user", content=user)],
        temperature=role.temperature if role.temperature is not None else default_temperature,
        max_tokens=role.max_tokens,
        seed=role.seed,
        json_schema=json_schema,
        reasoning=role.reasoning,
    )


def _read_line(d: Draft, sources: list[Source] | None) -> str:
    """The sources a draft searched or read, by number (synthesis) or URL (review), inside its block."""
    if not d.citations:
        return ""
    if sources is not None:
        numbers = [f"[{s.n}]" for s in sources if d.label in s.drafts]
        return f"\n\n(Sources this draft read: {', '.join(numbers)})" if numbers else ""
    return "\n\n(Sources this draft read: " + "; ".join(c.url for c in d.citations[:20]) + ")"


def drafts_block(drafts: list[Draft], nonce: str, *, with_weights: bool, sources: list[Source] | None = None) -> str:
    """The drafts as delimited data blocks, in the order given."""
    parts = []
    for d in drafts:
        note = f' weight="{d.weight:.0%}"' if with_weights else ""
        parts.append(wrap_draft((d.text or "") + _read_line(d, sources), d.label, nonce, note))
    return "\n\n".join(parts)


def draft_request(role: ModelRole, question: str, context: str | None) -> ChatRequest:
    user = render("draft_user", context_block=context_block(context), question=question)
    system = render("draft_system")
    if role.tools:
        system += "\n\n" + render("draft_tools", tools=" and ".join(role.tools))
    return _request(role, system, user).model_copy(update={"web": role.web})


def review_request(role: ModelRole, question: str, context: str | None, drafts: list[Draft], nonce: str,
                   *, analysis: bool = True) -> ChatRequest:
    """Drafts by label, scored (and, with `analysis`, compared) at temperature 0 unless the role says
    otherwise, under a JSON schema."""
    labels = [d.label for d in drafts]
    user = render("review_user", context_block=context_block(context), question=question,
                  drafts=drafts_block(drafts, nonce, with_weights=False), labels=", ".join(labels),
                  and_compare=", compare them" if analysis else "")
    system = render("review_system", nonce=nonce, compare=render("review_compare") + "\n" if analysis else "",
                    shape=render("review_shape_analysis" if analysis else "review_shape_scores"))
    if "web_fetch" in role.tools and analysis:
        system += "\n\n" + render("review_tools")
    return _request(role, system, user, default_temperature=0.0, json_schema=review_schema(labels, analysis=analysis))


def analysis_text(analysis: Analysis, labels: set[str]) -> str:
    """The reviewer's analysis as short lines by draft label (the synthesizer sees no model names);
    entries about drafts it does not see are left out."""
    lines = [f"Consensus: {p}" for p in analysis.consensus]
    for c in analysis.contradictions:
        stances = "; ".join(f"{s.label}: {s.stance}" for s in c.stances if s.label in labels)
        if stances:
            checked = f" (checked against {c.checked_source}: {c.finding})" if c.checked_source and c.finding else ""
            lines.append(f"Contradiction on {c.topic}: {stances}{checked}")
    lines += [f"Covered only by {', '.join(p.labels)}: {p.point}" for p in analysis.partial_coverage
              if set(p.labels) & labels]
    lines += [f"Unique to {u.label}: {u.insight}" for u in analysis.unique_insights if u.label in labels]
    lines += [f"Blind spot: {b}" for b in analysis.blind_spots]
    return "\n".join(f"- {line}" for line in lines)


def synthesis_request(role: ModelRole, question: str, context: str | None, ranked: list[Draft], nonce: str,
                      analysis: Analysis | None = None, sources: list[Source] | None = None) -> ChatRequest:
    text = analysis_text(analysis, {d.label for d in ranked}) if analysis else ""
    block = "\n" + render("analysis_block", nonce=nonce, analysis=clean_data(text, nonce)) + "\n" if text else ""
    block += sources_block(sources or [], nonce)
    user = render("synthesis_user", context_block=context_block(context), question=question,
                  drafts=drafts_block(ranked, nonce, with_weights=True, sources=sources or None), analysis_block=block)
    return _request(role, render("synthesis_system", nonce=nonce), user)
