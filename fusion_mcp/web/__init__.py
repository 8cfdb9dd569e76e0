"""The web tools a role may be offered (docs/web.md): `web_search` through one of several search backends,
and `web_fetch`, which opens only public addresses (or the ensemble's `fetch_allow`), pinned to the address
it checked, and returns a page's main text. Below `config` (which reads the `[web]` table) and above
`providers` (whose ToolCall and ToolSpec types it uses)."""
