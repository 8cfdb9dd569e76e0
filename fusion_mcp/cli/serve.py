"""`fusion-mcp serve`: its options, and starting the server on the chosen transport.

Building the parser does not import the MCP SDK (about 1.5 s), which every other command would pay for.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from ..redaction import register_secret_value
from ..server.auth import AUTH_TOKEN_ENV, BindError, check_bind
from .console import add_ensemble_dirs, positive_seconds
from .help_format import WrappedHelp
from .serve_team import add_team_options

if TYPE_CHECKING:  # rich loads when a command runs, not for `--help`
    from rich.console import Console


SERVE_EXAMPLES = """\
examples:
  fusion-mcp serve                       stdio, as Claude Desktop and VS Code start it
  FUSION_MCP_AUTH_TOKEN=... fusion-mcp serve --transport streamable-http --port 8000
  make inspect                           (in the clone) the MCP Inspector on this server
"""


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("serve", help="run the MCP server", epilog=SERVE_EXAMPLES,
                            description="Serve the tools (fused_answer, compare_drafts, get_run, list_ensembles, "
                                        "list_models) to an MCP host.",
                            formatter_class=WrappedHelp)
    add_ensemble_dirs(parser, "--ensembles", "--ensemble-dir")
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio",
                        help="stdio for desktop hosts (default); sse or streamable-http to serve over HTTP")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind for HTTP transports (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, default=8000, help="port for HTTP transports (default 8000)")
    parser.add_argument("--auth-token", default=None,
                        help=f"bearer token every HTTP request must carry (default: ${AUTH_TOKEN_ENV})")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="extra Host name clients use to reach a non-loopback server (repeatable)")
    parser.add_argument("--tool-timeout", type=positive_seconds, default=None, metavar="SECONDS",
                        help="longest a tool call waits for its run before answering 'running' "
                             "(default $FUSION_MCP_TOOL_TIMEOUT or 40; Claude Desktop gives up at ~60)")
    parser.add_argument("--max-running", type=int, default=128, metavar="N",  # service.DEFAULT_MAX_RUNNING
                        help="runs in flight at once, background runs included; more queue (default 128)")
    parser.add_argument("--confirm-over", type=float, default=None, metavar="USD",
                        help="ask the user (hosts with elicitation) before a run estimated to cost more "
                             "(default $FUSION_MCP_CONFIRM_OVER; unset: never ask)")
    parser.add_argument("--store", default=None, metavar="URL",
                        help="shared store for replicas behind a load balancer: redis://HOST:PORT/DB "
                             "(default $FUSION_MCP_STORE, else this process's memory; see docs/deploy.md)")
    add_team_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, _console: Console, _err: Console) -> int:
    import anyio

    from ..config.ensemble_registry import EnsembleRegistry
    from ..errors import ConfigError
    from .serve_team import oauth_config, team_flags

    if args.confirm_over is not None and args.confirm_over < 0:
        print("error: --confirm-over must be zero or more (USD)", file=sys.stderr)
        return 2
    try:  # the flags over the environment's settings
        settings = args.settings.with_flags(auth_token=args.auth_token, store=args.store,
                                            tool_timeout_s=args.tool_timeout, confirm_over_usd=args.confirm_over,
                                            **team_flags(args))
        token = settings.auth_token
        signs_in = oauth_config(args, settings) is not None
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.transport != "stdio":
        if token is not None:
            register_secret_value(token)
        try:
            check_bind(args.host, token, signs_in=signs_in)
        except BindError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    registry = EnsembleRegistry.load(args.ensemble_dirs or [], settings=settings)
    for problem in registry.errors.values():  # stderr: stdout is the stdio transport's
        print(f"warning: {problem}", file=sys.stderr)

    from ..server.app import create_server
    from ..server.http_app import serve_http

    if args.transport != "stdio" and not 0 < args.port < 65536:
        print(f"error: --port must be between 1 and 65535, not {args.port}", file=sys.stderr)
        return 2
    if args.max_running < 1:
        print("error: --max-running must be at least 1", file=sys.stderr)
        return 2
    from .serve_team import team_setup

    try:
        store = settings.store
        if store is not None and args.transport == "sse":
            raise ConfigError("--store needs --transport streamable-http (SSE ties a client to one replica)")
        if store is not None:
            from ..store.redis_client import probe

            anyio.run(probe, store)
        team = team_setup(args, settings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        server = create_server(registry, settings=settings, max_running=args.max_running,
                               store_url=store, telemetry=team.telemetry, verifier=team.verifier,
                               budget_limits=team.budgets)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _settle_heap()
    if args.transport == "stdio":
        server.run()
    else:
        anyio.run(lambda: serve_http(server, args.transport, args.host, args.port, token, args.allowed_host,
                                     stateless=store is not None))
    return 0


def _settle_heap() -> None:
    """Before serving: what start-up built (modules, schemas, the registry) lives as long as the server,
    so it moves out of the collector's sight (gc.freeze), and the youngest generation collects less
    often: a fused call allocates many short-lived objects, and each full collection walked them all
    (a profile under bench/load.py --http showed the collector among a call's largest costs)."""
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 20)  # from (700, 10, 10)
