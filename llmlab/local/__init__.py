"""The embedded local endpoint: llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

Three small models ship as PyPI packages, so llmlab works before you have a gateway key:

* ``smollm2-135m`` — SmolLM2-135M-Instruct (instruction-tuned, chat format ``chatml``);
* ``gemma-3-270m`` — Gemma 3 270M **base** model (not instruction-tuned): the cheap, weak model
  of the three. Messages are rendered as ``### Instruction:`` / ``### Response:`` text (chat
  format ``llmlab-instruction``), with which the base model answers briefly and on topic; Gemma's
  own turn template makes it echo the prompt.
* ``qwen2.5-coder-0.5b`` — Qwen2.5-Coder-0.5B-Instruct (instruction-tuned, Qwen's own ChatML
  template from the GGUF): the strong model of the three. Its 491 MB file is joined once from
  six part packages into the model cache and checked against a pinned SHA-256.

>>> from llmlab import local
>>> with local.start() as server:            # every bundled model, free port
...     print(server.base_url, server.models)
>>> local.start(models=["smollm2-135m", ("mine", "/models/qwen.gguf")])

The server answers one request at a time (others queue, and their latency includes the wait)
and sends no ``usage`` in streamed responses (llmlab then counts tokens locally). Unknown model
names get a 404. ``/llmlab/health`` reports each model's identity (GGUF SHA-256 and size, chat
format, context size; :mod:`._identity`): llmlab's response cache keys on it, not on the port.
Settings: ``LLMLAB_LOCAL_PORT`` (port for :func:`ensure_running`), ``LLMLAB_LOCAL_THREADS``
(threads per model), ``LLMLAB_MODEL_CACHE`` (assembled model files, and the models' digests).
Importing this package does not import llama_cpp; install the extra with
``CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local]"`` in the llmlab checkout.

Layer: beside ``store``, under the engine (which starts it when no endpoint is configured); may
import ``base`` only. ``_child.py`` runs as a script and imports nothing of llmlab.
"""
from __future__ import annotations

from ..base._errors import LocalServerError
from ._ensure import ensure_running
from ._models import BundledModel, bundled_models, model_cache_dir
from ._server import LocalServer, start

__all__ = ["start", "ensure_running", "LocalServer", "LocalServerError", "BundledModel",
           "bundled_models", "model_cache_dir"]
