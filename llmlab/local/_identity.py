"""What the embedded endpoint's answers depend on, for the response cache: not its URL.

The embedded endpoint listens on a free port that changes every session, so a cache keyed by
its URL would miss after every kernel restart. What decides an answer is the model served under
a name: the GGUF file (its SHA-256 and size) and the server settings that change the text
(the chat format, the context size). :func:`model_identities` computes that per model when the
server starts; the server reports it in ``/llmlab/health`` (``"identities"``), and
:func:`~._server.embedded_url` wraps the endpoint's URL with it for the engine's cache key. Two servers
serving the same file under the same name with the same settings share answers whatever their
ports; another file (or format, or context size) under the same name never does.

Hashing a model file costs about 2 s per 500 MB, once: the digest is remembered in the model
cache (``identities.json``, by path, size and mtime) and a file that changed is hashed again.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..base._errors import InputError
from ..base._files import write_private
from ..base._json import loads
from ._assemble import file_sha256
from ._models import ModelSpec, model_cache_dir

__all__ = ["EmbeddedURL", "model_identities"]

_MEMO_NAME = "identities.json"


class EmbeddedURL(str):
    """The embedded endpoint's URL (as stored and shown) carrying what each of its models is.

    A plain ``str`` everywhere else — the ``endpoint`` column keeps the real URL; only the cache
    key reads :meth:`cache_identity`. Copies and pickles are plain strings (a stored row never
    carries the identities)."""

    _identities: dict[str, dict[str, Any]]

    def __new__(cls, url: str, identities: Mapping[str, Mapping[str, Any]]) -> EmbeddedURL:
        self = super().__new__(cls, url)
        self._identities = {str(alias): dict(identity) for alias, identity in identities.items()}
        return self

    def cache_identity(self, model: str) -> dict[str, Any] | None:
        """What answers ``model`` here (file digest and settings); None for a name not served."""
        identity = self._identities.get(model)
        return dict(identity) if identity is not None else None

    def __reduce__(self):
        return (str, (str(self),))


def model_identities(specs: list[ModelSpec], *, n_ctx: int,
                     say: Callable[[str], None] | None = None) -> dict[str, dict[str, Any]]:
    """Each served model's identity: its file's SHA-256 and size, chat format, context size."""
    memo_path = model_cache_dir() / _MEMO_NAME
    memo = _read_memo(memo_path)
    fresh = dict(memo)
    identities = {}
    for spec in specs:
        stat = spec.path.stat()
        stamp = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
        known = memo.get(str(spec.path))
        if not (isinstance(known, dict) and {k: known.get(k) for k in stamp} == stamp and known.get("sha256")):
            if say is not None:
                say(f"hashing {spec.alias}'s model file for the response cache ({stat.st_size / 1e6:.0f} MB; once)…")
            known = {**stamp, "sha256": file_sha256(spec.path)}
            fresh[str(spec.path)] = known
        identities[spec.alias] = {"gguf_sha256": known["sha256"], "gguf_bytes": stat.st_size,
                                  "chat_format": spec.chat_format, "n_ctx": n_ctx}
    if fresh != memo:
        # No memo (an unwritable cache) only means hashing again at the next start.
        with contextlib.suppress(OSError, InputError):
            write_private(memo_path, json.dumps(fresh, indent=1, sort_keys=True), what="the model digests")
    return identities


def _read_memo(path: Path) -> dict:
    try:
        data = loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
