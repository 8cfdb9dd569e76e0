"""`fusion-mcp serve`: its options, and starting the server on the chosen transport.

Kept apart from server.py so that building the CLI parser does not import the MCP SDK
(about 1.5 s), which every other command would pay for.
"""

from __future__ import annotations

import argparse
import os
import sys

from .http_auth import AUTH_TOKEN_ENV, BindError, check_bind


def add_serve_command(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--transport", choices=["stdio", "sse", "streamable-http"], default="stdio",
                        help="stdio for desktop hosts (default); sse or streamable-http to serve over HTTP")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind for HTTP transports (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, default=8000, help="port for HTTP transports (default 8000)")
    parser.add_argument("--auth-token", default=None,
                        help=f"bearer token every HTTP request must carry (default: ${AUTH_TOKEN_ENV})")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="extra Host name clients use to reach a non-loopback server (repeatable)")
    parser.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    import anyio

    from .ensembles import EnsembleRegistry

    token = args.auth_token or os.environ.get(AUTH_TOKEN_ENV) or None
    if args.transport != "stdio":
        try:
            check_bind(args.host, token)
        except BindError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    registry = EnsembleRegistry.load(args.ensemble_dirs or [])
    for exc in registry.errors.values():  # stderr: stdout is the stdio transport's
        print(f"warning: {exc}", file=sys.stderr)

    from .server import create_server, serve_http

    server = create_server(registry)
    if args.transport == "stdio":
        server.run()
    else:
        anyio.run(serve_http, server, args.transport, args.host, args.port, token, args.allowed_host)
    return 0
