"""Where the endpoint is and which variable holds its key.

Precedence for the base URL: explicit argument > ``LLMLAB_BASE_URL`` > ``OPENAI_BASE_URL``
(environment, then a ``.env`` file in the working directory). The key is read from the variable
named by ``api_key_env`` (environment, then ./.env), else the first of ``LLMLAB_API_KEY``,
``OPENAI_API_KEY`` set in the endpoint's own source: the environment for the user's endpoint, ./.env
for one ./.env chose (a key is never paired with an endpoint from another source unless the user
names or trusts it); ``api_key_env=""`` sends no key. Only the variable's *name* is kept on
objects; the value is read when a client is built.

Trust: ``./.env`` and ``./pyproject.toml`` belong to the folder, which may be a cloned
repository. When the endpoint comes from ``./.env``, a key is taken only from that same file, or
from a variable the user named (``api_key_env=``, or listed in ``LLMLAB_TRUSTED_KEY_VARS`` in the
environment): a project file can choose where requests go, never which of your secrets goes with
them. And where they go: an endpoint or a PostgreSQL log a project file chooses is used only on
this machine (localhost, 127.x, ::1, a unix socket in a standard folder) unless the user's own
environment names it in ``LLMLAB_TRUSTED_HOSTS`` — libpq would otherwise send the user's ``PGPASSWORD``,
``~/.pgpass`` or service-file password to whatever host a cloned repository names
(:func:`check_project_endpoint`, :func:`check_project_database`). For an endpoint a trusted entry
names an origin: a bare host is ``https`` on port 443 only (a project file moving it to ``http://``
or another port would send the key in clear, or to another service), ``https://host:8443`` or
``http://host:8000`` that origin, and the user's own ``LLMLAB_BASE_URL``/``OPENAI_BASE_URL`` on a
trusted host adds its own origin. A project file's endpoint off this machine gets a key over
``https`` only; the user's own plain-``http`` endpoint with a key is warned about in one line.
A SQLite log a project file chooses must lie inside the project folder (the working directory, symlinks resolved) or
``$LLMLAB_HOME``, unless the user names it (:func:`check_project_log_file`): a cloned repository
cannot have your prompts written to a file elsewhere on the machine. The embedded endpoint (a
:class:`LocalURL`) never gets a key.
"""
from __future__ import annotations

import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from ._errors import ConfigError
from ._redact import public_url, remember, url_secrets
from ._text import check_unicode
from ._validate import check_env_name, check_url

__all__ = ["Endpoint", "LocalURL", "resolve_endpoint", "read_key", "llmlab_home", "read_dotenv", "check_env_name",
           "trusted_key_vars", "trusted_default_key", "default_base_url", "default_db", "trusted_hosts",
           "trusted_origins", "url_origin",
           "is_local_host", "check_project_endpoint", "check_project_database", "check_project_log_file",
           "TRUSTED_HOSTS"]

BASE_URL_VARS = ("LLMLAB_BASE_URL", "OPENAI_BASE_URL")
KEY_VARS = ("LLMLAB_API_KEY", "OPENAI_API_KEY")
# Local servers (llama.cpp, vLLM without --api-key) ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "llmlab-no-key"


TRUSTED_KEY_VARS = "LLMLAB_TRUSTED_KEY_VARS"
TRUSTED_HOSTS = "LLMLAB_TRUSTED_HOSTS"
DOTENV = "./.env"
_LOOPBACK = re.compile(r"127\.\d{1,3}\.\d{1,3}\.\d{1,3}")


class LocalURL(str):
    """The base URL of llmlab's embedded endpoint: it needs no key and never gets one."""

    __slots__ = ()


@dataclass(frozen=True)
class Endpoint:
    base_url: str | None  # None: use the embedded local endpoint; may hold user:password@
    api_key_env: str | None  # name of the variable holding the key, None when there is none
    key_from_dotenv: bool = False  # the endpoint came from ./.env: read the key from that file only
    key_from_env: bool = False  # the user's endpoint, its default key: read from the environment only

    @property
    def public_url(self) -> str | None:
        """The URL without ``user:password@``: what is stored and shown."""
        return public_url(self.base_url)

    def __repr__(self) -> str:
        return f"Endpoint(base_url={self.public_url!r}, api_key_env={self.api_key_env!r})"


def llmlab_home() -> Path:
    return Path(os.environ.get("LLMLAB_HOME") or Path.home() / ".llmlab")


def default_db() -> tuple[str | Path, str | None]:
    """The run log when ``Lab(db=)`` is not given — ``LLMLAB_DB`` (a path or a ``postgresql://`` URL,
    environment then ./.env) › ``$LLMLAB_HOME/runs.sqlite`` — and the project file that chose it
    (``"./.env"``; None when the user did)."""
    if os.environ.get("LLMLAB_DB"):
        return os.environ["LLMLAB_DB"], None
    chosen = read_dotenv().get("LLMLAB_DB")
    return (chosen, DOTENV) if chosen else (llmlab_home() / "runs.sqlite", None)


def trusted_hosts() -> set[str]:
    """The entries of ``LLMLAB_TRUSTED_HOSTS`` (comma-separated, lower case, read from the environment
    only: a project's ./.env cannot vouch for itself): the hosts, socket folders and services a
    project file may choose for a PostgreSQL log. Endpoints read them as origins (:func:`trusted_origins`)."""
    return {h.strip().lower() for h in os.environ.get(TRUSTED_HOSTS, "").split(",") if h.strip()}


Origin = tuple[str, str, int]  # scheme, host (lower case, no brackets), port
_DEFAULT_PORTS = {"http": 80, "https": 443}


def url_origin(url: str) -> Origin:
    """The origin of a checked http(s) URL: the scheme's default port when none is written."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def trusted_origins() -> set[Origin]:
    """The endpoint origins the user allows project files to choose: each ``LLMLAB_TRUSTED_HOSTS``
    entry written as an origin (``https://h:8443``, ``http://h:8000``, ``h:8443``), a bare host as
    https on 443 only — trusting a name is not trusting every service on it in clear — and the
    origin of the user's own ``LLMLAB_BASE_URL``/``OPENAI_BASE_URL`` (environment) on a bare host."""
    origins, bare_hosts = set(), set()
    for entry in trusted_hosts():
        url = entry if "://" in entry else _https_url(entry)
        origin = _origin_or_none(url)
        if origin is not None:
            origins.add(origin)
            if url != entry and urllib.parse.urlsplit(url).port is None:
                bare_hosts.add(origin[1])
    own = (_origin_or_none(url) for url in filter(None, (os.environ.get(name) for name in BASE_URL_VARS)))
    return origins | {origin for origin in own if origin is not None and origin[1] in bare_hosts}


def _https_url(entry: str) -> str:
    """An entry without a scheme as an https URL (an unbracketed IPv6 address as a host)."""
    return f"https://[{entry}]" if entry.count(":") > 1 and "[" not in entry else f"https://{entry}"


def _origin_or_none(url: str) -> Origin | None:
    """The origin of ``url``, or None when it names no http(s) origin (a socket folder, a service,
    ``ftp://``, a port that is no number)."""
    try:
        origin = url_origin(url)
    except ValueError:
        return None
    return origin if origin[0] in _DEFAULT_PORTS and origin[1] else None


def _origin_entry(origin: Origin) -> str:
    """What to add to ``LLMLAB_TRUSTED_HOSTS`` to trust ``origin``: its host when it is https on 443."""
    scheme, host, port = origin
    if (scheme, port) == ("https", 443):
        return host
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}" + ("" if port == _DEFAULT_PORTS[scheme] else f":{port}")


# The folders a local PostgreSQL server puts its unix socket in (Debian/Ubuntu, Red Hat), which
# only root and the postgres user may write. Not /tmp (upstream libpq's default): any local user
# may bind /tmp/.s.PGSQL.<port> for a port no server uses; another folder (/home/x/sock) may be any
# local user's, and a Linux abstract socket (@name) has no permissions at all: a server there would
# receive the password libpq sends. A project file may choose only these; a user may name any socket.
STANDARD_SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql")


def is_local_host(host: str) -> bool:
    """This machine: no host (libpq's default unix socket), localhost, a loopback address, or a
    socket in a standard folder (:data:`STANDARD_SOCKET_DIRS`)."""
    host = host.strip()
    if host.startswith("/"):  # a folder's name is case-sensitive
        return os.path.normpath(host) in STANDARD_SOCKET_DIRS
    host = host.lower().removeprefix("[").removesuffix("]")
    return host in ("", "localhost", "::1") or bool(_LOOPBACK.fullmatch(host))


def _trust_advice(host: str, what: str) -> str:
    return (f"a project file may choose {what} on this machine only. If you trust it, add {host} to "
            f"{TRUSTED_HOSTS} in your environment (export {TRUSTED_HOSTS}={host}), or choose it yourself")


_CHOOSE_ENDPOINT = "(LLMLAB_BASE_URL in your environment, Lab(base_url=...) or %config LLMLab.base_url = ...)"


def check_project_endpoint(url: str, source: str, key_var: str | None) -> None:
    """An endpoint a project file (``source``) chose: refused unless it is on this machine or its
    origin is trusted (:func:`trusted_origins`), and, off this machine, when a key would go to it
    over plain http; the message says what would have gone there."""
    origin = url_origin(url)
    scheme, host, _ = origin
    if is_local_host(host):
        return
    if origin not in trusted_origins():
        sent = f"with the key in {key_var}" if key_var else "(no key)"
        raise ConfigError(f"{source} chooses the endpoint {public_url(url)} on {host}: every prompt {sent} would "
                          f"go there; {_trust_advice(_origin_entry(origin), 'an endpoint')} {_CHOOSE_ENDPOINT}")
    if key_var and scheme == "http":
        raise ConfigError(f"{source} chooses the endpoint {public_url(url)}, plain http to {host}: the key in "
                          f"{key_var} would travel unencrypted; a project file's endpoint off this machine gets a "
                          f"key over https only. Use https://, send no key (api_key_env=''), or choose the "
                          f"endpoint yourself {_CHOOSE_ENDPOINT}")


def check_project_database(shown: str, hosts: tuple[str, ...], user: str | None, service: str | None,
                           source: str) -> None:
    """A PostgreSQL log a project file (``source``) chose: refused unless every host it may reach
    is on this machine or trusted (a service of pg_service.conf needs its name trusted); the
    message says which credentials would go where."""
    trusted = trusted_hosts()
    foreign = [h for h in hosts if not is_local_host(h) and h.lower() not in trusted]
    if service and service.lower() not in trusted:
        foreign.append(f"service {service}")
    if not foreign:
        return
    login = f"user {user}" if user else "your login name"
    raise ConfigError(f"{source} chooses the run log {shown} on {foreign[0]}: libpq would send it your PostgreSQL "
                      f"password for {login} (PGPASSWORD, ~/.pgpass or pg_service.conf) and every prompt and answer "
                      f"would be stored there; {_trust_advice(foreign[0].removeprefix('service '), 'a log')} "
                      "(LLMLAB_DB in your environment, Lab(db=...) or %config LLMLab.db = ...)")


def check_project_log_file(path: str, source: str) -> None:
    """A SQLite log a project file (``source``) chose: refused unless it lies inside the project
    folder (the working directory) or ``$LLMLAB_HOME`` once ``~``, ``..`` and symlinks are resolved."""
    if path == ":memory:":
        return
    try:
        where = Path(path).expanduser().resolve()
        inside = any(where.is_relative_to(root.expanduser().resolve()) for root in (Path.cwd(), llmlab_home()))
    except (OSError, RuntimeError, ValueError):  # a NUL byte, ~nouser, a symlink loop: it names no place here
        inside = False
    if inside:
        return
    shown = path if path.isprintable() else ascii(path)
    raise ConfigError(f"{source} chooses the run log {shown}, outside this project folder: every prompt and answer "
                      "would be stored there; a project file may choose a log inside its own folder or "
                      "$LLMLAB_HOME only. If you trust it, choose it yourself (LLMLAB_DB in your environment, "
                      "Lab(db=...) or %config LLMLab.db = ...)")


MAX_PROJECT_FILE_BYTES = 2**20  # a .env or pyproject.toml is a few kB; a cloned repo's may be anything


def read_project_file(path: Path, shown: str) -> bytes | None:
    """The text of a file every project ships (``./.env``, ``./pyproject.toml``) — a regular file
    of at most 1 MB, read through :func:`llmlab.base._files.read_regular` (a FIFO, a device, a
    ``/proc`` file or an endless file is refused before anything blocks or reads without end) —
    or None, after one warning ``ignoring ./.env: …``, when it cannot be read as one."""
    from ._errors import InputError
    from ._files import read_regular
    from ._warnings import warn_once

    try:
        data = read_regular(path, what=shown, limit=MAX_PROJECT_FILE_BYTES)
    except (InputError, OSError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        warn_once(f"project-file:{path}", UserWarning(f"ignoring {shown}: {why}"))
        return None
    return data


def read_dotenv(path: Path | None = None) -> dict[str, str]:
    """Parse ``KEY=VALUE`` lines of ./.env (quotes stripped, comments and blanks skipped)."""
    path = path or Path.cwd() / ".env"
    if not path.exists():  # a FIFO or a device too: refused below with a warning
        return {}
    data = read_project_file(path, "./.env" if path == Path.cwd() / ".env" else str(path))
    if data is None:
        return {}
    values: dict[str, str] = {}
    for raw in data.decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        name, _, value = line.removeprefix("export ").partition("=")
        values[name.strip()] = value.strip().strip("'\"")
    return values


def _lookup(name: str, dotenv: dict[str, str]) -> str | None:
    return os.environ.get(name) or dotenv.get(name) or None


def trusted_key_vars() -> set[str]:
    """Key variables the user allows project files to name (``LLMLAB_TRUSTED_KEY_VARS``, read
    from the environment only: a project's ./.env cannot vouch for itself)."""
    return {n.strip() for n in os.environ.get(TRUSTED_KEY_VARS, "").split(",") if n.strip()}


def trusted_default_key(dotenv: dict[str, str] | None = None) -> str | None:
    """The first default key variable (LLMLAB_API_KEY, OPENAI_API_KEY) that is set and trusted."""
    dotenv = read_dotenv() if dotenv is None else dotenv
    trusted = trusted_key_vars()
    return next((n for n in KEY_VARS if n in trusted and _lookup(n, dotenv)), None)


def default_base_url(dotenv: dict[str, str] | None = None) -> tuple[str | None, str | None]:
    """The endpoint when none is given, and where it came from: ``LLMLAB_BASE_URL`` ›
    ``OPENAI_BASE_URL`` of the environment (``"$NAME"``), then of ./.env (``"./.env"``); (None, None)
    when neither names one (the embedded endpoint)."""
    url = next(((v, f"${n}") for n in BASE_URL_VARS if (v := os.environ.get(n))), None)
    if url is None:
        dotenv = read_dotenv() if dotenv is None else dotenv
        url = next(((v, DOTENV) for n in BASE_URL_VARS if (v := dotenv.get(n))), None)
    return url or (None, None)


def resolve_endpoint(base_url: str | None = None, api_key_env: str | None = None) -> Endpoint:
    """The endpoint and its key variable. A key goes only with an endpoint from the same source:
    the user's endpoint (an argument, the environment) gets a default key from the environment,
    one from ./.env gets a key from that same ./.env (or a variable the user names or trusts)."""
    if isinstance(base_url, LocalURL):
        return Endpoint(_check_url(base_url), None)
    dotenv = read_dotenv()
    url, source = (base_url, "base_url") if base_url else default_base_url(dotenv)
    if url is not None:
        url = _check_url(url, user=source != DOTENV)
    if api_key_env is not None:  # the user named it (or "" for none): their pairing
        endpoint = Endpoint(url, check_env_name(api_key_env) if api_key_env else None)
    elif source == DOTENV:
        endpoint = _dotenv_endpoint_key(url, dotenv)
    else:
        endpoint = _user_endpoint_key(url, source, dotenv)
    if source == DOTENV:  # whichever key goes with it, a project's endpoint stays on this machine
        check_project_endpoint(str(url), DOTENV, endpoint.api_key_env)
    elif url is not None and endpoint.api_key_env:
        _warn_plain_http(url, source, endpoint.api_key_env)
    return endpoint


def _warn_plain_http(url: str, source: str | None, key_var: str) -> None:
    """The user's own endpoint off this machine over plain http gets its key in clear: said once
    (not refused: a vLLM server on a LAN often speaks http only)."""
    from ._warnings import warn_once

    scheme, host, _ = url_origin(url)
    if scheme != "http" or is_local_host(host):
        return
    where = "your base_url" if source == "base_url" else f"{source} in your environment"
    warn_once(f"plain-http:{public_url(url)}:{key_var}", UserWarning(
        f"llmlab: the endpoint {public_url(url)} ({where}) is plain http to {host}: the key in {key_var} travels "
        f"unencrypted; use https:// if the server offers it, or api_key_env='' if it needs no key"))


def _user_endpoint_key(url: str | None, source: str | None, dotenv: dict[str, str]) -> Endpoint:
    """The user chose the endpoint: a default key from the environment, else a trusted one from
    ./.env; a key ./.env holds for itself is never paired with it (said in one line)."""
    trusted = trusted_key_vars()
    mine = next((n for n in KEY_VARS if os.environ.get(n)), None)
    endpoint = (Endpoint(url, mine, key_from_env=True) if mine else
                Endpoint(url, next((n for n in KEY_VARS if n in trusted and dotenv.get(n)), None)))
    shadowed = next((n for n in KEY_VARS if os.environ.get(n) or dotenv.get(n)), None)
    if url is not None and shadowed is not None and shadowed != endpoint.api_key_env and shadowed not in trusted:
        _warn_withheld_dotenv_key(url, source, shadowed, endpoint.api_key_env)
    return endpoint


def _warn_withheld_dotenv_key(url: str, source: str | None, withheld: str, used: str | None) -> None:
    import warnings

    where = "your base_url" if source == "base_url" else f"{source} in your environment"
    sent = f"uses {used} from your environment" if used else "gets no key"
    warnings.warn(f"llmlab: ./.env sets {withheld}, but the endpoint {public_url(url)} comes from {where}, not "
                  f"from ./.env, so it {sent} (a project file cannot choose which key your endpoint gets); if "
                  f"that ./.env is yours, pass api_key_env={withheld!r} or set {TRUSTED_KEY_VARS}={withheld}",
                  stacklevel=5)


def _dotenv_endpoint_key(url: str | None, dotenv: dict[str, str]) -> Endpoint:
    """./.env chose the endpoint: its own key, or one the user trusts; never another secret."""
    trusted = trusted_default_key(dotenv)
    if trusted:
        return Endpoint(url, trusted)
    own = next((n for n in KEY_VARS if dotenv.get(n)), None)
    if own:
        return Endpoint(url, own, key_from_dotenv=True)
    withheld = next((n for n in KEY_VARS if os.environ.get(n)), None)
    if withheld:
        import warnings

        warnings.warn(
            f"llmlab: the endpoint {public_url(url)} comes from ./.env, so {withheld} from your environment "
            f"is not sent to it (a project file cannot pick your secrets); if that is intended, pass "
            f"api_key_env={withheld!r} or set {TRUSTED_KEY_VARS}={withheld}", stacklevel=4)
    return Endpoint(url, None)


def _check_url(url: str, *, user: bool = True) -> str:
    if isinstance(url, str):
        try:
            check_unicode(url, "base_url")
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if user:  # the user's own URL's credentials are never shown either; a project file's "secret" is
            # not the user's, and remembered it would let a cloned repo blank words out of every message
            remember(url_secrets(url, user=False))
    return check_url(str(url) if isinstance(url, LocalURL) else url)


def read_key(endpoint: Endpoint) -> str:
    """The key value for a client, read now (never stored on llmlab objects)."""
    if endpoint.api_key_env is None:
        return PLACEHOLDER_KEY
    name, dotenv = endpoint.api_key_env, read_dotenv()
    value = (dotenv.get(name) if endpoint.key_from_dotenv else os.environ.get(name) if endpoint.key_from_env
             else _lookup(name, dotenv))
    if not value:
        raise ConfigError(f"environment variable {name} is not set; export it or add it to ./.env")
    _check_key_value(name, value)
    remember([value])  # from now on no view of this process shows it
    return value


def _check_key_value(name: str, value: str) -> None:
    """A key is sent in an HTTP header: whitespace or other characters there make every call fail
    with a confusing connection error. Say which variable, never the value."""
    if value != value.strip():
        raise ConfigError(f"the value of {name} has leading or trailing whitespace (a pasted newline?); "
                          "remove it and try again")
    bad = next((c for c in value if not "\x21" <= c <= "\x7e"), None)
    if bad is not None:
        kind = ("a space" if bad.isspace() else "a control character" if ord(bad) < 32 or ord(bad) == 127
                else "a non-ASCII character")
        raise ConfigError(f"the value of {name} contains {kind}, which an HTTP header cannot carry; "
                          "check that the variable holds only the key")
