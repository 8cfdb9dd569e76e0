"""What the pace book (fusion/paces.py) has measured, as the store keeps it: per model its pace, per
model and stage how many tokens it writes. The book decides what to learn; this only keeps it.

`FilePaces` keeps it in memory and, with a path, in a JSON file (beside the call cache by default);
`store/redis_paces.py` shares it between replicas.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import anyio.to_thread

log = logging.getLogger("fusion_mcp")
FILE_VERSION = 1
FILE_NAME = "paces.json"
SAVE_EVERY_S = 5.0  # a file is rewritten at most this often while runs go on; `flush` writes the rest


@dataclass
class Pace:
    """A model's time to first token and output rate; `samples`: how many calls it averages."""

    ttft_s: float
    tokens_per_s: float
    samples: int = 0

    def seconds(self, output_tokens: float) -> float:
        return self.ttft_s + max(0.0, output_tokens - 1) / max(self.tokens_per_s, 0.1)


class PaceStore(Protocol):
    """Measured paces (`measured[ref]`) and output sizes (`outputs["ref|stage"]`), written through
    `set_pace` / `set_output`, persisted by `save` (which may also take in what others measured)."""

    measured: dict[str, Pace]
    outputs: dict[str, float]

    def set_pace(self, ref: str, pace: Pace) -> None: ...

    def set_output(self, key: str, tokens: float) -> None: ...

    async def load(self) -> None: ...

    async def save(self) -> None: ...

    async def flush(self) -> None:
        """Write what `save` may have held back (at shutdown)."""
        ...


class FilePaces:
    """Paces in this process, kept in `path` (a JSON file) when given; a bad file starts afresh."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.measured: dict[str, Pace] = {}
        self.outputs: dict[str, float] = {}
        self._dirty = False
        self._saving = False
        self._saved_at = -SAVE_EVERY_S

    def set_pace(self, ref: str, pace: Pace) -> None:
        self.measured[ref] = pace
        self._dirty = True

    def set_output(self, key: str, tokens: float) -> None:
        self.outputs[key] = tokens

    async def load(self) -> None:
        self.load_now()

    def load_now(self) -> FilePaces:
        if self.path is None:
            return self
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") == FILE_VERSION:
                self.measured = {ref: Pace(**p) for ref, p in data.get("paces", {}).items()}
                self.outputs = {k: float(v) for k, v in data.get("outputs", {}).items()}
        except FileNotFoundError:
            pass
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable model paces %s: %s", self.path, exc)
        return self

    async def save(self) -> None:
        """Write the paces when they changed, at most every SAVE_EVERY_S (a server's calls end many a
        second, and the file is a few KB: a write each was measurable CPU). Runs that end together share
        one write: while one is under way, a save only leaves the paces dirty and that write goes round
        again with them."""
        if time.monotonic() - self._saved_at >= SAVE_EVERY_S:
            await self.flush()

    async def flush(self) -> None:
        if self.path is None or not self._dirty or self._saving:
            return
        self._saving = True
        self._saved_at = time.monotonic()
        try:
            while self._dirty:
                self._dirty = False
                data = {"version": FILE_VERSION, "paces": {k: asdict(v) for k, v in self.measured.items()},
                        "outputs": self.outputs}
                await anyio.to_thread.run_sync(self._write, self.path, json.dumps(data, indent=1))
        except OSError as exc:  # a read-only home costs the learning, never the answer
            self._dirty = True
            log.warning("cannot save model paces to %s: %s", self.path, exc)
        finally:
            self._saving = False

    @staticmethod
    def _write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")  # runs may save at once
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
