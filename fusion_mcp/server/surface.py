"""What a host model sees of the tools: lean schemas, and argument errors as one clear line.

A tools/list result lands in the host's context on every turn, so the schemas lose what hosts
ignore (pydantic's generated titles, `anyOf [X, null]` spelled out) and keep what helps (the
descriptions and the parameter titles written as words). An argument the SDK rejects comes back as
one line naming each parameter and what was wrong, not pydantic's multi-line dump.
"""

import logging
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS, Tool, ToolExecution
from pydantic import ValidationError

log = logging.getLogger("fusion_mcp")


def lean_schema(schema: Any, *, keep_titles: bool, key: str | None = None, descriptions: bool = True) -> Any:
    """A copy of a JSON schema without the schema and model titles pydantic generates, without
    `"default": null`, and with `anyOf [X, {"type": "null"}]` made X with `"type": [.., "null"]`;
    `keep_titles` keeps the parameters' titles (tools.py writes each as words); without
    `descriptions`, descriptions go too (output schemas: hosts validate results against them, but do
    not show them to their model; docs/tools.md describes each field)."""
    if isinstance(schema, list):
        return [lean_schema(s, keep_titles=keep_titles, descriptions=descriptions) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        if k == "title" and isinstance(v, str):
            if keep_titles and key is not None:
                out[k] = v
            continue
        if (k == "default" and v is None) or (k == "description" and not descriptions and isinstance(v, str)):
            continue
        if k in ("properties", "$defs") and isinstance(v, dict):
            out[k] = {name: lean_schema(sub, keep_titles=keep_titles and k == "properties", key=name,
                                        descriptions=descriptions) for name, sub in v.items()}
        else:
            out[k] = lean_schema(v, keep_titles=keep_titles, descriptions=descriptions)
    variants = out.get("anyOf")
    if isinstance(variants, list) and len(variants) == 2 and {"type": "null"} in variants:
        other = next(v for v in variants if v != {"type": "null"})
        if isinstance(other, dict) and isinstance(other.get("type"), str):
            del out["anyOf"]
            out = {**other, **out, "type": [other["type"], "null"]}
    return out


def one_line(tool: str, exc: ValidationError) -> str:
    """`invalid arguments to fused_answer: deadline_s: must be greater than 0; ...` (no values)."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "arguments"
        msg = err["msg"].removeprefix("Value error, ")
        msg = msg[0].lower() + msg[1:] if msg else "invalid"
        msg = msg.replace("input should be", "must be").replace("string should", "must")
        problems.append(f"{where}: {msg}")
    return f"invalid arguments to {tool}: " + "; ".join(problems)


class FusionMCPServer(MCPServer):
    """The SDK's server with lean tool schemas, one-line argument errors, and the tools that may run as
    MCP tasks (tasks.py) marked so."""

    task_tools: frozenset[str] = frozenset()

    async def list_tools(self) -> list[Tool]:
        tools = await super().list_tools()
        return [t.model_copy(update={
            "input_schema": lean_schema(t.input_schema, keep_titles=True),
            "output_schema": lean_schema(t.output_schema, keep_titles=False, descriptions=False)
            if t.output_schema else None,
            "execution": ToolExecution(task_support="optional") if t.name in self.task_tools else None,
        }) for t in tools]

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        """An unknown prompt or a missing argument is the caller's mistake: INVALID_PARAMS (-32602) with
        a message that says what exists, and one log line, not a traceback."""
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(p.name for p in self._prompt_manager.list_prompts())
            log.warning("prompts/get: unknown prompt %r", name)
            raise MCPError(code=INVALID_PARAMS, message=f"unknown prompt {name!r}; the prompts are: {known}")
        missing = [a.name for a in prompt.arguments or [] if a.required and not (arguments or {}).get(a.name)]
        if missing:
            log.warning("prompts/get %s: missing %s", name, ", ".join(missing))
            raise MCPError(code=INVALID_PARAMS, message=f"prompt {name!r} needs {', '.join(missing)}")
        return await super().get_prompt(name, arguments, context)

    _arguments_of: dict[str, list[str]] | None = None

    async def _known_arguments(self, name: str) -> list[str] | None:
        if self._arguments_of is None:
            self._arguments_of = {t.name: list((t.input_schema or {}).get("properties", {}))
                                  for t in await super().list_tools()}
        return self._arguments_of.get(name)

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
        known = await self._known_arguments(name)
        unknown = sorted(set(arguments or {}) - set(known)) if known is not None else []
        if unknown:  # the SDK ignores them: a misspelt argument would silently do nothing
            named = ", ".join(repr(u[:40]) for u in unknown[:5])
            takes = ", ".join(known or []) or "none"
            raise ToolError(f"invalid arguments to {name}: unknown argument{'s' if len(unknown) > 1 else ''} "
                            f"{named}; it takes {takes}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(one_line(name, cause)) from cause
            raise
