"""A minimal MCP Apps host for tests: a page that embeds a `ui://` view in an iframe and speaks the
host side of the postMessage JSON-RPC protocol (ui/initialize, ui/notifications/tool-result, and
resources/read answered from a real server's resources), rendered by headless Chromium.

Once the view reports its size after a full render, the page copies the view's DOM into #dump, so
Chromium's --dump-dom shows what the view shows.
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
const log = [];
function send(msg) { view.contentWindow.postMessage(Object.assign({jsonrpc: "2.0"}, msg), "*"); }
window.addEventListener("message", (event) => {
  const msg = event.data;
  if (!msg || msg.jsonrpc !== "2.0" || event.source !== view.contentWindow) return;
  log.push(msg.method || "response");
  if (msg.method === "ui/initialize") {
    send({id: msg.id, result: {protocolVersion: msg.params.protocolVersion, hostInfo: {name: "test host", version: "1"},
                               hostCapabilities: {serverResources: {}}, hostContext: {theme: "light"}}});
  } else if (msg.method === "ui/notifications/initialized") {
    send({method: "ui/notifications/tool-result", params: toolResult});
  } else if (msg.method === "resources/read") {
    const text = resources[msg.params.uri];
    if (text === undefined) send({id: msg.id, error: {code: -32002, message: "no such resource"}});
    else send({id: msg.id, result: {contents: [{uri: msg.params.uri, mimeType: "application/json", text}]}});
  } else if (msg.method === "ui/notifications/size-changed") {
    const doc = view.contentDocument;
    if (doc && doc.body.dataset.rendered === "full") {
      document.getElementById("dump").innerHTML = doc.getElementById("app").outerHTML;
      document.getElementById("protocol").textContent = log.join(",");
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


def host_page(view_html: str, tool_result: dict[str, Any], resources: dict[str, str]) -> str:
    def data(name: str, value: Any) -> str:
        body = json.dumps(value).replace("</", "<\\/")  # no early </script>
        return f'<script type="application/json" id="{name}">{body}</script>'

    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>host</title></head><body style='margin:0'>"
        f"<iframe id='view' style='width:1100px;height:900px;border:0' srcdoc=\"{html.escape(view_html, quote=True)}\">"
        "</iframe><div id='dump' hidden></div><div id='protocol' hidden></div>"
        + data("tool-result", tool_result) + data("resources", resources)
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
