"""`serve`'s options for a team endpoint: OAuth sign-in, metrics, traces, the audit log (docs/team.md).

Parsing them imports nothing heavy; `team_setup` builds what they ask for, or raises a ConfigError
that names the flag (or variable) and what to do.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..team.budget_names import BUDGET_ENV, BUDGETS_FILE_ENV
from ..team.oauth import ADMIN_SCOPE_ENV, AUDIENCE_ENV, ISSUER_ENV, RESOURCE_ENV, SCOPE_ENV

METRICS_PORT_ENV = "FUSION_MCP_METRICS_PORT"
AUDIT_LOG_ENV = "FUSION_MCP_AUDIT_LOG"


def add_team_options(parser: argparse.ArgumentParser) -> None:
    team = parser.add_argument_group("team endpoint (docs/team.md)")
    team.add_argument("--oauth-issuer", default=None, metavar="URL",
                      help=f"sign users in with tokens from this OAuth/OpenID issuer (default ${ISSUER_ENV})")
    team.add_argument("--oauth-audience", default=None, metavar="AUD",
                      help=f"the `aud` tokens must carry (default ${AUDIENCE_ENV})")
    team.add_argument("--oauth-scope", default=None, metavar="SCOPE",
                      help=f"a scope every token must carry (default ${SCOPE_ENV}, else none)")
    team.add_argument("--oauth-admin-scope", default=None, metavar="SCOPE",
                      help=f"a scope whose holders may read every user's runs (default ${ADMIN_SCOPE_ENV})")
    team.add_argument("--oauth-resource", default=None, metavar="URL",
                      help=f"the endpoint's public URL, e.g. https://mcp.example.com/mcp (default ${RESOURCE_ENV}, "
                           "else http://HOST:PORT/mcp)")
    team.add_argument("--user-budget-usd", type=float, default=None, metavar="AMOUNT",
                      help=f"each signed-in user's budget per day (UTC), in US dollars (default ${BUDGET_ENV})")
    team.add_argument("--user-budgets", default=None, metavar="FILE",
                      help=f"a TOML file of per-user daily budgets (default ${BUDGETS_FILE_ENV}; docs/team.md)")
    team.add_argument("--metrics-port", type=int, default=None, metavar="N",
                      help=f"serve Prometheus metrics at http://127.0.0.1:N/metrics (default ${METRICS_PORT_ENV})")
    team.add_argument("--audit-log", default=None, metavar="FILE",
                      help=f"append one JSON line per run to FILE ('-': stderr; default ${AUDIT_LOG_ENV}, else "
                           "stderr when users sign in, else none)")
    team.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                      help="address the metrics listen on (default 127.0.0.1)")


@dataclass
class Team:
    telemetry: Any = None  # team.telemetry.Telemetry
    verifier: Any = None  # team.oauth.JwtVerifier
    budgets: Any = None  # team.budgets.BudgetLimits


def _flag_or_env(value: str | None, env: str) -> str | None:
    return (value if value is not None else os.environ.get(env, "")).strip() or None


def _missing_extra(what: str) -> ConfigError:
    return ConfigError(f"{what} needs the team extra: from a fusion-mcp clone, pip install -e '.[team]'")


def oauth_config(args: argparse.Namespace, token: str | None) -> Any:
    """The OAuth settings asked for, or None; a ConfigError for half a configuration or a mix with a token."""
    from ..team.oauth import OAuthConfig

    issuer = _flag_or_env(args.oauth_issuer, ISSUER_ENV)
    audience = _flag_or_env(args.oauth_audience, AUDIENCE_ENV)
    if issuer is None and audience is None:
        return None
    if issuer is None or audience is None:
        missing = "--oauth-issuer" if issuer is None else "--oauth-audience"
        raise ConfigError(f"OAuth sign-in needs both --oauth-issuer and --oauth-audience: set {missing} too")
    if token is not None:
        raise ConfigError("both a static bearer token (--auth-token / FUSION_MCP_AUTH_TOKEN) and OAuth "
                          "(--oauth-issuer) are set: choose one, unset the other")
    if args.transport == "stdio":
        raise ConfigError("--oauth-issuer signs in users over HTTP: use --transport streamable-http")
    resource = _flag_or_env(args.oauth_resource, RESOURCE_ENV)
    if resource is None:
        if args.host in ("0.0.0.0", "::"):
            raise ConfigError(f"set --oauth-resource (or {RESOURCE_ENV}) to the public URL hosts reach this "
                              "server at, e.g. https://mcp.example.com/mcp")
        shown = f"[{args.host}]" if ":" in args.host else args.host
        resource = f"http://{shown}:{args.port}/{'sse' if args.transport == 'sse' else 'mcp'}"
    return OAuthConfig(issuer=issuer, audience=audience, resource=resource,
                       required_scope=_flag_or_env(args.oauth_scope, SCOPE_ENV),
                       admin_scope=_flag_or_env(args.oauth_admin_scope, ADMIN_SCOPE_ENV))


def budget_limits(args: argparse.Namespace, *, signs_in: bool) -> Any:
    """The per-user budgets asked for, or None; they need signed-in users to belong to."""
    from ..team.budgets import BudgetLimits

    amount = args.user_budget_usd
    if amount is None and os.environ.get(BUDGET_ENV, "").strip():
        try:
            amount = float(os.environ[BUDGET_ENV])
        except ValueError:
            shown = os.environ[BUDGET_ENV]
            raise ConfigError(f"{BUDGET_ENV}={shown!r} is not an amount: use US dollars, e.g. 5") from None
    path = _flag_or_env(args.user_budgets, BUDGETS_FILE_ENV)
    if amount is None and path is None:
        return None
    if amount is not None and not amount >= 0:
        raise ConfigError(f"--user-budget-usd must be 0 or more US dollars (got {amount})")
    if not signs_in:
        raise ConfigError("per-user budgets need users: add --oauth-issuer and --oauth-audience (docs/team.md)")
    return BudgetLimits.load(amount, path)


def team_setup(args: argparse.Namespace, token: str | None) -> Team:
    """Discover the issuer (at start-up: a wrong issuer fails now), start the metrics listener, set up
    traces from the environment, and send the audit log to stderr."""
    import anyio

    team = Team()
    config = oauth_config(args, token)
    if config is not None:
        try:
            import jwt  # noqa: F401  (PyJWT, with its crypto)
        except ImportError:
            raise _missing_extra("--oauth-issuer") from None
        from ..team.oauth import JwtVerifier, discover

        team.verifier = JwtVerifier(config, anyio.run(discover, config.issuer))
    team.budgets = budget_limits(args, signs_in=config is not None)
    metrics = None
    port = args.metrics_port if args.metrics_port is not None else os.environ.get(METRICS_PORT_ENV)
    if port not in (None, ""):
        try:
            from ..team.metrics import Metrics
        except ImportError:
            raise _missing_extra("--metrics-port") from None
        metrics = Metrics()
        try:
            metrics.serve(int(port), args.metrics_host)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot serve metrics on {args.metrics_host}:{port}: {exc}") from None
    from ..team.telemetry import Telemetry
    from ..team.tracing import capture_content, tracer_from_env

    team.telemetry = Telemetry(metrics, tracer_from_env(), content=capture_content())
    audit_to(_flag_or_env(args.audit_log, AUDIT_LOG_ENV) or ("-" if config is not None else None))
    return team


def audit_to(where: str | None) -> None:
    """Send the audit lines (team/telemetry.py) to a file, or to stderr for '-' (stdout is the stdio
    transport's); None leaves them off."""
    if where is None:
        return
    audit = logging.getLogger("fusion_mcp.audit")
    try:
        handler: logging.Handler = logging.StreamHandler(sys.stderr) if where == "-" else logging.FileHandler(where)
    except OSError as exc:
        raise ConfigError(f"cannot open the audit log {where}: {exc.strerror or exc}") from None
    handler.setFormatter(logging.Formatter("%(asctime)s fusion-mcp audit %(message)s"))
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
    audit.propagate = False
