"""A real third-party OpenAI-compatible server for tests: llama.cpp's own HTTP server (as shipped in
the xllamacpp wheel) serving the SmolLM2 file on a loopback port.

Run as a program: prints the server's base URL (`http://127.0.0.1:PORT`) on one line, then serves
until stdin closes. A separate process, so the server is exercised over the wire only.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin on a shared CPU

import xllamacpp

from fusion_mcp.providers.local import resolve_model_path


def main() -> None:
    params = xllamacpp.CommonParams()
    params.model.path = str(resolve_model_path("local", "smollm2"))
    params.n_parallel = 3
    params.n_ctx = 4096 * 3
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    params.verbosity = 0
    server = xllamacpp.Server(params)
    print(server.listening_address, flush=True)
    sys.stdin.read()
    del server


if __name__ == "__main__":
    main()
