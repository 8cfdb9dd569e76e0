"""web_fetch's HTTP side: every hop checked (address.py), the connection pinned to the checked address,
redirects followed by hand (at most MAX_REDIRECTS), a time limit and a size cap, then the main text."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin

import anyio
import httpx2 as httpx

from .address import FetchRefused, IPAddress, Target, check
from .extract import main_text

MAX_REDIRECTS = 3
USER_AGENT = "fusion-mcp web_fetch (+https://github.com/fusion-mcp)"
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml")


@dataclass
class Page:
    url: str  # the last hop's URL
    title: str | None
    text: str
    truncated: bool  # the body was over the size cap


def pinned_client() -> httpx.AsyncClient:
    """A client that never follows redirects itself and ignores proxy variables (a proxy would resolve
    the name again, past the check)."""
    return httpx.AsyncClient(follow_redirects=False, trust_env=False)


async def _get_any(client: httpx.AsyncClient, target: Target, timeout_s: float, max_bytes: int
                   ) -> tuple[int, str | None, str, bytes, bool]:
    """The first of the checked addresses that accepts the connection answers (a name with an IPv6
    address on a host without IPv6 still works)."""
    for i, ip in enumerate(target.ips):
        try:
            return await _get(client, target, ip, timeout_s, max_bytes)
        except httpx.ConnectError:
            if i == len(target.ips) - 1:
                raise
    raise httpx.ConnectError("no address")  # not reached: check() returns at least one


async def _get(client: httpx.AsyncClient, target: Target, ip: IPAddress, timeout_s: float, max_bytes: int
               ) -> tuple[int, str | None, str, bytes, bool]:
    """(status, location, content type, body up to max_bytes, whether the body was cut)."""
    headers = {"host": target.host_header, "user-agent": USER_AGENT,
               "accept": "text/html,text/plain;q=0.9,*/*;q=0.5"}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = httpx.Timeout(timeout_s, connect=min(5.0, timeout_s))
    request = client.build_request("GET", target.connect_url(ip), headers=headers, timeout=timeout,
                                   extensions=extensions)
    response = await client.send(request, stream=True)
    try:
        if response.is_redirect:
            return response.status_code, response.headers.get("location"), "", b"", False
        body = bytearray()
        cut = False
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                cut = True
                del body[max_bytes:]
                break
        return response.status_code, None, response.headers.get("content-type", ""), bytes(body), cut
    finally:
        await response.aclose()


async def fetch_page(client: httpx.AsyncClient, url: str, *, allow: frozenset[str], timeout_s: float,
                     max_bytes: int) -> Page:
    """The page at `url`; FetchRefused (a reason for the model) for a refused address, a redirect chain
    too long, an HTTP error, a type that is not text, or a failure to connect."""
    deadline = anyio.current_time() + timeout_s
    current = url
    for hop in range(MAX_REDIRECTS + 1):
        target = await check(current, allow)
        left = deadline - anyio.current_time()
        if left <= 0:
            raise FetchRefused(f"no answer within {timeout_s:g} s")
        try:
            with anyio.fail_after(left):
                status, location, kind, body, cut = await _get_any(client, target, left, max_bytes)
        except TimeoutError:
            raise FetchRefused(f"no answer within {timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise FetchRefused(f"cannot fetch {target.host}: {type(exc).__name__}") from None
        if location is not None:
            if hop == MAX_REDIRECTS:
                raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")
            current = urljoin(current, location)
            continue
        if status >= 400:
            raise FetchRefused(f"HTTP {status}")
        if kind and not kind.lower().startswith(_TEXT_TYPES):
            raise FetchRefused(f"not a text page ({kind.split(';')[0]})")
        charset = "utf-8"
        if "charset=" in kind.lower():
            charset = kind.lower().split("charset=")[1].split(";")[0].strip().strip('"') or "utf-8"
        try:
            raw = body.decode(charset, errors="replace")
        except LookupError:
            raw = body.decode("utf-8", errors="replace")
        is_html = "html" in kind.lower() or raw.lstrip()[:15].lower().startswith(("<!doctype html", "<html"))
        title, text = main_text(raw, current) if is_html else (None, raw.strip())
        return Page(url=current, title=title, text=text, truncated=cut)
    raise FetchRefused(f"more than {MAX_REDIRECTS} redirects")  # not reached
