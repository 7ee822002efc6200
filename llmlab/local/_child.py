"""Process entry point of the embedded endpoint: llama-cpp-python's server, hardened for llmlab.

Run as a *script* (``python .../_child.py --parent-pid N --config FILE``), not with ``-m``, so the
server process does not import llmlab, pandas or openai. Compared with
``python -m llama_cpp.server --config_file FILE`` it adds:

* a watchdog: the server exits within ~0.5 s when the process that started it is gone (kernel
  restart, ``kill -9``), so no orphan keeps a port and two CPU threads busy;
* ``--keep-loaded``: every model stays in memory instead of llama-cpp-python's one-at-a-time
  swap, so alternating models does not add a model reload to each measured latency; all models
  load at start, so a broken file fails the start instead of a later request;
* unknown model names get an OpenAI-style 404 (upstream silently answers with the first model
  and echoes the requested name, which would be recorded and priced as that model);
* ``GET /v1/models`` and ``GET /llmlab/health`` answered without the model lock, so health checks
  do not wait behind a generation;
* the ``llmlab-instruction`` chat format (``### Instruction:`` / ``### Response:``) for base
  models: Gemma 3 270M base answers short and on topic with it, while Gemma's own turn template
  (``<start_of_turn>``) makes the untuned model echo the prompt followed by junk tokens.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
from typing import Any

ERROR_PREFIX = "llmlab-child: error: "


def _fail(message: str, code: int = 3) -> None:
    print(ERROR_PREFIX + message, file=sys.stderr, flush=True)
    sys.exit(code)


def _watch_parent(parent_pid: int, scratch_dir: str | None) -> None:
    # Polling getppid works on every POSIX system and, unlike PR_SET_PDEATHSIG, does not fire
    # when merely the *thread* that spawned us exits (Lab may start us from a worker thread).
    def loop() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        if scratch_dir:  # the parent cannot clean up after a kill -9: do it for it
            shutil.rmtree(scratch_dir, ignore_errors=True)
        os._exit(0)

    threading.Thread(target=loop, name="llmlab-parent-watchdog", daemon=True).start()


def _keep_loaded_proxy(base: Any, fail: Any) -> Any:
    class KeepLoadedProxy(base):
        """All models resident; requests pick one without closing the others."""

        def __init__(self, models):
            self._model_settings_dict = {m.model_alias or m.model: m for m in models}
            self._default_model_alias = next(iter(self._model_settings_dict))
            self._default_model_settings = self._model_settings_dict[self._default_model_alias]
            self._loaded = {alias: _load(self, alias, settings, fail)
                            for alias, settings in self._model_settings_dict.items()}
            self._current_model_alias = self._default_model_alias
            self._current_model = self._loaded[self._default_model_alias]

        def __call__(self, model=None):
            alias = model if model in self._loaded else self._default_model_alias
            self._current_model_alias, self._current_model = alias, self._loaded[alias]
            return self._current_model

        def free(self):
            for llama in self._loaded.values():
                llama.close()
            self._loaded.clear()

    return KeepLoadedProxy


def _load(proxy, alias, settings, fail):
    try:
        return proxy.load_llama_from_model_settings(settings)
    except Exception as exc:  # llama.cpp reports a bad file as ValueError/RuntimeError
        fail(f"cannot load model {alias!r} from {settings.model}: {exc}")


def _json_response(status: int, payload: dict):
    body = json.dumps(payload).encode()

    async def respond(send) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    return respond


def _guard(inner, aliases: list[str], identities: dict | None = None):
    """ASGI wrapper: lock-free model listing/health, 404 for unknown model names. The health
    check reports each model's identity (file digest, settings): the response cache keys on it,
    not on this server's port."""
    listing = _json_response(200, {"object": "list", "data": [
        {"id": a, "object": "model", "owned_by": "llmlab-local", "permissions": []} for a in aliases]})
    health = _json_response(200, {"llmlab": True, "pid": os.getpid(), "models": aliases,
                                  "identities": identities or {}})

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return await inner(scope, receive, send)
        path, method = scope["path"].rstrip("/"), scope["method"]
        if method == "GET" and path in ("/v1/models", "/models"):
            return await listing(send)
        if method == "GET" and path == "/llmlab/health":
            return await health(send)
        if method == "POST" and path.endswith("completions"):
            body = await _read_body(receive)
            model = _model_of(body)
            if model is not None and model not in aliases:
                return await _unknown_model(model, aliases)(send)
            receive = _replay(body, receive)
        return await inner(scope, receive, send)

    return app


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _model_of(body: bytes):
    try:
        payload = json.loads(body or b"{}")  # this process imports nothing of llmlab (base._json)
    except (ValueError, RecursionError):  # RecursionError: a body nested deeper than json reads
        return None  # let the server produce its own validation error
    return payload.get("model") if isinstance(payload, dict) else None


def _unknown_model(model, aliases):
    message = (f"The model `{model}` does not exist on the llmlab local endpoint; "
               f"available: {', '.join(aliases)}")
    return _json_response(404, {"error": {"message": message, "type": "invalid_request_error",
                                          "param": "model", "code": "model_not_found"}})


def _replay(body: bytes, receive):
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replayed():
        # After the buffered body, defer to the real channel (it reports the disconnect).
        return pending.pop() if pending else await receive()

    return replayed


def _message_text(content) -> str:
    if isinstance(content, str):
        return content
    parts = content or []
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


def _register_instruction_format(chat_format) -> None:
    def format_instruction(messages, **kwargs):
        system = "\n".join(_message_text(m.get("content")) for m in messages
                           if m.get("role") == "system")
        prompt = [system + "\n\n"] if system else []
        headers = {"user": "### Instruction:\n", "assistant": "### Response:\n"}
        for message in messages:
            header = headers.get(message.get("role"))
            if header:
                prompt.append(f"{header}{_message_text(message.get('content'))}\n\n")
        prompt.append(headers["assistant"])
        return chat_format.ChatFormatterResponse(prompt="".join(prompt),
                                                 stop=["\n###", "### Instruction"])

    chat_format.register_chat_format("llmlab-instruction")(format_instruction)


def _build_app(config: dict, keep_loaded: bool):
    try:
        import llama_cpp.llama_chat_format as chat_format
        import llama_cpp.server.app as server_app
        from llama_cpp.server.settings import ConfigFileSettings, ServerSettings
    except ImportError as exc:
        _fail(f"llama-cpp-python with its server extra is not importable ({exc}); install it with "
              'CMAKE_ARGS="-DGGML_NATIVE=OFF" pip install -e ".[local]" in the llmlab checkout')
    _register_instruction_format(chat_format)
    config = dict(config)
    identities = config.pop("llmlab_identities", None)  # llmlab's, not a server setting
    settings = ConfigFileSettings.model_validate(config)
    if keep_loaded:
        # patched by name: upstream swaps models per request (see the module docstring)
        setattr(server_app, "LlamaProxy", _keep_loaded_proxy(server_app.LlamaProxy, _fail))  # noqa: B010
    try:
        app = server_app.create_app(server_settings=ServerSettings.model_validate(settings),
                                    model_settings=settings.models)
    except SystemExit:
        raise
    except Exception as exc:
        _fail(f"the server failed to start: {type(exc).__name__}: {exc}")
    aliases = [m.model_alias or m.model for m in settings.models]
    return _guard(app, aliases, identities)


def main(argv=None) -> None:
    # Run as a script, our own folder heads sys.path; llmlab's private module names
    # (_server, _models...) must not shadow anything llama_cpp or uvicorn imports.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != here]
    parser = argparse.ArgumentParser(prog="llmlab-local-server")
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--keep-loaded", action="store_true")
    parser.add_argument("--scratch-dir", help="removed if the parent dies without stopping us")
    args = parser.parse_args(argv)
    _watch_parent(args.parent_pid, args.scratch_dir)
    with open(args.config, encoding="utf-8") as fh:
        config = json.load(fh)
    app = _build_app(config, args.keep_loaded)
    import uvicorn

    print(f"llmlab-child: serving {config['host']}:{config['port']} pid {os.getpid()}", flush=True)
    uvicorn.run(app, host=config["host"], port=int(config["port"]), log_level="warning",
                timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
