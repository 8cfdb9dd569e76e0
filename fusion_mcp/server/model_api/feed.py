"""The synthesis as it is written, for a stream: redacted, in pieces that are safe to send.

Text reaches the engine's `on_text` before redaction (calls.py redacts the whole answer once it is in),
and a key may arrive split across pieces. So the feed keeps the newest `HOLD` characters back and
sends a prefix only where redacting it apart from the rest gives the same text as redacting the two
together: no key, or piece of one, spans the cut. At the end, the run's own (redacted) answer is the
truth: what is still owed of it is sent, or, when the answer is not what was streamed (the synthesis
failed and a draft answers, or a retry started the synthesis over), a note and the whole answer.
"""

from __future__ import annotations

import anyio

from ...redaction import redact

HOLD = 32  # characters kept back: well past a 12-character key piece, under a second of a model's writing


class TextFeed:
    def __init__(self) -> None:
        self._pending = ""  # raw text not yet cleared for sending
        self._ready: list[str] = []  # redacted text cleared, not yet taken
        self._sent: list[str] = []  # everything taken so far
        self._wake = anyio.Event()
        self.closed = False

    def write(self, piece: str) -> None:
        """The engine's `on_text`: called in the run's task with each piece of the synthesis."""
        self._pending += piece
        cut = len(self._pending) - HOLD
        if cut > 0:
            head, tail = self._pending[:cut], self._pending[cut:]
            clean_head = redact(head)
            if clean_head + redact(tail) == redact(self._pending):
                self._ready.append(clean_head)
                self._pending = tail
        self._wake.set()

    def close(self) -> None:
        """The run has ended (answered, failed or cancelled): wake the stream for the last time."""
        self.closed = True
        self._wake.set()

    async def wait(self, timeout_s: float) -> bool:
        """Until text is written or the run ends (True), or `timeout_s` passes quietly (False)."""
        woke = False
        with anyio.move_on_after(timeout_s):
            await self._wake.wait()
            woke = True
        if self._wake.is_set():
            self._wake = anyio.Event()
        return woke

    def take(self) -> str:
        """The text cleared since the last take."""
        text = "".join(self._ready)
        self._ready.clear()
        if text:
            self._sent.append(text)
        return text

    @property
    def sent(self) -> str:
        return "".join(self._sent)

    def rest(self, answer: str, why_replaced: str) -> str:
        """What to send after the stream so the client ends up with `answer`."""
        sent = self.sent
        if answer.startswith(sent):
            return answer[len(sent):]
        return f"\n\n[fusion: the text above is not the answer ({why_replaced}); the answer follows]\n\n{answer}"
