"""How long a model's reply may be, per role: past it the text is cut and marked truncated.

A reply's length follows from the role's token limit (a token is about four characters of text;
the cap allows CHARS_PER_TOKEN, so no honest reply reaches it), under a hard ceiling, so that one
upstream that sends megabytes (a loop, or a hostile server) costs neither memory nor the next
model's prompt: a draft past its cap is never forwarded whole to the reviewer or the synthesizer.
"""

from __future__ import annotations

from ..config.ensembles import ModelRole
from ..providers import ChatRequest

CHARS_PER_TOKEN = 16
MIN_CHARS = 16_384
CEILING_CHARS = 1_000_000  # the hard ceiling, whatever the token limit
UNLIMITED_TOKENS = 32_768  # a role sent with no token limit is capped as if it had this one
MARGIN_CHARS = 512  # read past the cap, so that a key straddling it is redacted whole before the cut


def reply_cap(role: ModelRole, request: ChatRequest) -> int:
    """The most characters of a reply this call keeps."""
    tokens = request.max_tokens or role.max_tokens or role.provider.default_max_tokens or UNLIMITED_TOKENS
    return min(CEILING_CHARS, max(MIN_CHARS, tokens * CHARS_PER_TOKEN))
