"""A minimal MCP Apps host for tests: a page that embeds a `ui://` view in an iframe and speaks the
host side of the postMessage JSON-RPC protocol (ui/initialize, ui/notifications/tool-result, and the
view's tools/call and resources/read answered with a real server's replies), rendered by headless Chromium.

Each time the view reports its size (after each render), the page copies the view's DOM into #dump
(with the view's state in data-state), so Chromium's --dump-dom shows what the view shows last.
"""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

HOST_JS = """
const view = document.getElementById("view");
const toolResult = JSON.parse(document.getElementById("tool-result").textContent);
const resources = JSON.parse(document.getElementById("resources").textContent);
const toolCalls = JSON.parse(document.getElementById("tool-calls").textContent);
const log = [];
function send(msg) { view.contentWindow.postMessage(Object.assign({jsonrpc: "2.0"}, msg), "*"); }
window.addEventListener("message", (event) => {
  const msg = event.data;
  if (!msg || msg.jsonrpc !== "2.0" || event.source !== view.contentWindow) return;
  log.push(msg.method ? msg.method + (msg.params && msg.params.name ? ":" + msg.params.name : "") : "response");
  document.getElementById("protocol").textContent = log.join(",");
  if (msg.method === "ui/initialize") {
    send({id: msg.id, result: {protocolVersion: msg.params.protocolVersion, hostInfo: {name: "test host", version: "1"},
                               hostCapabilities: {serverTools: {}, serverResources: {}}, hostContext: {theme: "light"}}});
  } else if (msg.method === "ui/notifications/initialized") {
    send({method: "ui/notifications/tool-result", params: toolResult});
  } else if (msg.method === "tools/call") {
    const next = toolCalls.shift();  // none left: never answered, as a host whose call is still going
    if (next !== undefined) send(Object.assign({id: msg.id}, next.error ? {error: next.error} : {result: next}));
  } else if (msg.method === "resources/read") {
    const text = resources[msg.params.uri];
    if (text === undefined) send({id: msg.id, error: {code: -32601, message: "this host does not read resources"}});
    else send({id: msg.id, result: {contents: [{uri: msg.params.uri, mimeType: "application/json", text}]}});
  } else if (msg.method === "ui/notifications/size-changed") {
    const doc = view.contentDocument;
    if (doc) {
      const dump = document.getElementById("dump");
      dump.innerHTML = doc.getElementById("app").outerHTML;
      dump.dataset.state = doc.body.dataset.rendered || "";
      view.style.height = (msg.params.height + 20) + "px";
    }
  }
});
"""


def chromium() -> str:
    """The headless browser (Debian package `chromium`, installed by `make browser`)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise RuntimeError("Chromium is not installed: run `make browser` (apt-get install chromium)")
    return found


def host_page(view_html: str, tool_result: dict[str, Any], resources: dict[str, str] | None = None,
              tool_calls: list[dict[str, Any]] | None = None) -> str:
    """The host page: it hands the view `tool_result`, answers the view's tools/call with `tool_calls` in
    order (then never again), and its resources/read from `resources` (none: a host that does not)."""
    def data(name: str, value: Any) -> str:
        body = json.dumps(value).replace("</", "<\\/")  # no early </script>
        return f'<script type="application/json" id="{name}">{body}</script>'

    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>host</title></head><body style='margin:0'>"
        f"<iframe id='view' style='width:1100px;height:900px;border:0' srcdoc=\"{html.escape(view_html, quote=True)}\">"
        "</iframe><div id='dump' hidden></div><div id='protocol' hidden></div>"
        + data("tool-result", tool_result) + data("resources", resources or {})
        + data("tool-calls", tool_calls or [])
        + f"<script>{HOST_JS}</script></body></html>"
    )


def render(page: Path, *, screenshot: Path | None = None, timeout_s: float = 90) -> str:
    """The page's DOM after its scripts ran (and a screenshot, when asked)."""
    base = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--allow-file-access-from-files", "--virtual-time-budget=15000", "--window-size=1100,1000"]
    if screenshot is not None:
        subprocess.run([*base, f"--screenshot={screenshot}", page.as_uri()], check=True, capture_output=True,
                       timeout=timeout_s)
    done = subprocess.run([*base, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                          timeout=timeout_s)
    return done.stdout
