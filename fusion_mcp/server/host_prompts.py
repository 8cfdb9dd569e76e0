"""The MCP prompts a user picks in a host (a slash command in Claude Desktop, VS Code), and argument
completion for them and for the `ensemble://` resource: ensemble names and model references.

Two prompts: `fuse` (ask fused_answer, report the answer and its confidence) and `compare` (ask
compare_drafts, then write the answer from the drafts and the reviewer's analysis). The texts live
in fusion_mcp/prompts/mcp_*.txt.
"""

from typing import Annotated, Any

from mcp.types import Completion, PromptReference, ResourceTemplateReference
from pydantic import Field

from ..config.ensemble_registry import EnsembleRegistry
from ..prompts import render

MODEL_ARGUMENTS = frozenset({"reviewer", "synthesizer", "drafter", "model"})
MAX_VALUES = 100

PromptQuestion = Annotated[str, Field(description="The question, self-contained.")]
PromptEnsemble = Annotated[str, Field(description="Ensemble name (list_ensembles); empty for the default.")]
PromptReviewer = Annotated[str, Field(description="Reviewer model, provider:model-id; empty for the ensemble's.")]


def _clause(ensemble: str, reviewer: str = "") -> str:
    parts = [f"ensemble {ensemble.strip()!r}"] if ensemble.strip() else []
    parts += [f"reviewer {reviewer.strip()!r}"] if reviewer.strip() else []
    return f" (with {' and '.join(parts)})" if parts else ""


def fuse(question: PromptQuestion, ensemble: PromptEnsemble = "") -> str:
    """Answer a question with several models: drafts, a review, one fused answer with its confidence."""
    return render("mcp_fuse", question=question.strip(), ensemble_clause=_clause(ensemble))


def compare(question: PromptQuestion, ensemble: PromptEnsemble = "", reviewer: PromptReviewer = "") -> str:
    """Compare several models' answers to a question, then write the answer from the comparison."""
    return render("mcp_compare", question=question.strip(), ensemble_clause=_clause(ensemble, reviewer))


PROMPTS = [(fuse, "Fuse this question"), (compare, "Compare answers")]


def model_refs(registry: EnsembleRegistry) -> list[str]:
    """Every model reference the loaded ensembles use (no network: the listings are list_models')."""
    refs = {role.ref for ens in registry.ensembles.values() for _, role in ens.roles}
    return sorted(refs)


def completer(registry: EnsembleRegistry) -> Any:
    """A completion handler: ensemble names for `ensemble` (prompts) and `name` (ensemble://),
    model references for the model arguments."""

    async def complete(ref: PromptReference | ResourceTemplateReference, argument: Any, _context: Any) -> Completion:
        typed = (argument.value or "").lower()
        if isinstance(ref, ResourceTemplateReference):
            pool = registry.names() if ref.uri == "ensemble://{name}" and argument.name == "name" else []
        elif argument.name == "ensemble":
            pool = registry.names()
        elif argument.name in MODEL_ARGUMENTS:
            pool = model_refs(registry)
        else:
            pool = []
        found = [v for v in pool if v.lower().startswith(typed)] or [v for v in pool if typed in v.lower()]
        return Completion(values=found[:MAX_VALUES], total=len(found), has_more=len(found) > MAX_VALUES)

    return complete
