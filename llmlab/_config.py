"""Where the endpoint is and which variable holds its key.

Precedence for the base URL: explicit argument > ``LLMLAB_BASE_URL`` > ``OPENAI_BASE_URL``
(environment, then a ``.env`` file in the working directory). The key is read from the variable
named by ``api_key_env`` (default ``LLMLAB_API_KEY``, then ``OPENAI_API_KEY``). Only the
variable's *name* is kept on objects; the value is read when a client is built.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._errors import ConfigError
from ._validate import check_env_name, check_url

__all__ = ["Endpoint", "resolve_endpoint", "read_key", "llmlab_home", "read_dotenv", "check_env_name"]

BASE_URL_VARS = ("LLMLAB_BASE_URL", "OPENAI_BASE_URL")
KEY_VARS = ("LLMLAB_API_KEY", "OPENAI_API_KEY")
# Local servers (llama.cpp, vLLM without --api-key) ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "llmlab-no-key"


@dataclass(frozen=True)
class Endpoint:
    base_url: str | None  # None: use the embedded local endpoint
    api_key_env: str | None  # name of the variable holding the key, None when there is none


def llmlab_home() -> Path:
    return Path(os.environ.get("LLMLAB_HOME") or Path.home() / ".llmlab")


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines of ./.env (quotes stripped, comments and blanks skipped)."""
    path = path or Path.cwd() / ".env"
    if not path.is_file():
        return {}
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def _lookup(name: str, dotenv: dict[str, str]) -> str | None:
    return os.environ.get(name) or dotenv.get(name) or None


def resolve_endpoint(base_url: str | None = None, api_key_env: str | None = None) -> Endpoint:
    dotenv = read_dotenv()
    url = base_url or next((v for n in BASE_URL_VARS if (v := _lookup(n, dotenv))), None)
    if url is not None:
        url = check_url(url)
    if api_key_env is not None:
        return Endpoint(url, check_env_name(api_key_env))
    found = next((n for n in KEY_VARS if _lookup(n, dotenv)), None)
    return Endpoint(url, found)


def read_key(endpoint: Endpoint) -> str:
    """The key value for a client, read now (never stored on llmlab objects)."""
    if endpoint.api_key_env is None:
        return PLACEHOLDER_KEY
    value = _lookup(endpoint.api_key_env, read_dotenv())
    if not value:
        raise ConfigError(
            f"environment variable {endpoint.api_key_env} is not set; export it or add it to ./.env"
        )
    return value
