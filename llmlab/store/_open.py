"""What a ``db`` value is, and which backend opens it: the one place that decides.

:func:`parse_db` reads every form a user (or a project file) may give:

* a plain path, or a ``pathlib.Path``, ``":memory:"``, ``sqlite:///relative/path``,
  ``sqlite:////absolute/path`` and ``sqlite://`` (in memory) → SQLite;
* ``postgresql://``, ``postgres://`` and SQLAlchemy's ``postgresql+psycopg://`` (any
  ``+driver``) URLs, and libpq keyword strings (``host=… dbname=… user=…``) → PostgreSQL.

Anything else that looks like a URL or a keyword string (``mysql://…``, ``sqlite:x``,
``postgresql:…`` without ``//``) is refused in one line: it is never taken for a file name. A
password in any form (``user:pw@``, ``?password=``, ``password=…``) is refused too — libpq reads it
from ``PGPASSWORD`` or ``~/.pgpass`` — and every message, ``store.path`` and repr shows the value
with each secret (password, ``passfile``, ``options``, ``service``, a fragment, an odd user name) as
``****``.
"""
from __future__ import annotations

import os
import re
import unicodedata
import urllib.parse
from dataclasses import dataclass
from typing import Any

from ..base._config import check_project_database, check_project_log_file
from ..base._errors import ConfigError, StoreError
from ._base import Store
from ._postgres import SECRET_KEYS, PostgresStore
from ._sqlite import SQLiteStore, not_a_log

__all__ = ["open_store", "parse_db", "check_chosen_db", "ProjectDb", "DbTarget", "is_postgres_url", "not_a_log"]

MASK = "****"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_POSTGRES = re.compile(r"^postgres(ql)?(\+[a-z0-9_]+)?$")
_SQLITE = re.compile(r"^sqlite3?(\+[a-z0-9_]+)?$")
# libpq's connection keywords (a string with one of them as key=value is a keyword string)
_LIBPQ_WORD = re.compile(r"(?:^|\s)(host|hostaddr|port|dbname|user|password|passfile|service|options|sslmode|"
                         r"sslpassword|sslkey|sslcert|sslrootcert|connect_timeout|application_name|"
                         r"target_session_attrs|require_auth|channel_binding|gssencmode|krbsrvname)\s*=",
                         re.IGNORECASE)
# values never shown; what a user name may look like to be shown
_SECRET_KEYS = SECRET_KEYS
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,63}$")
_SHOWN_QUERY = frozenset({"sslmode", "connect_timeout", "application_name", "target_session_attrs", "host",
                          "hostaddr", "port", "dbname", "user"})
_SHOWN_VALUE = re.compile(r"^[A-Za-z0-9_.\-,:/\[\]]{0,255}$")  # a host list, a port, a socket folder
_HOW = "a SQLite file path, sqlite:///path, or postgresql://user@host:5432/dbname"


@dataclass(frozen=True)
class DbTarget:
    """A parsed ``db`` value: the backend, what it opens, and how it may be shown."""

    kind: str  # "sqlite" or "postgresql"
    target: str  # a SQLite path (or ":memory:"), or the libpq URL / keyword string psycopg opens
    shown: str  # the value with every secret as ****: what messages, store.path and reprs show
    hosts: tuple[str, ...] = ()  # PostgreSQL: every host it may connect to ("" = the local socket)
    user: str | None = None  # PostgreSQL: the user libpq logs in as (None: the OS user; **** if odd)
    service: str | None = None  # PostgreSQL: a service of the user's pg_service.conf
    keywords: tuple[str, ...] = ()  # PostgreSQL: the libpq keywords it sets (what check_chosen_db allows)


def is_postgres_url(db: Any) -> bool:
    try:
        return parse_db(db).kind == "postgresql"
    except (StoreError, ConfigError):
        return False


def parse_db(db: Any) -> DbTarget:
    """What ``db`` is: :class:`DbTarget`, or a one-line :class:`StoreError` (secrets masked)."""
    if isinstance(db, os.PathLike):
        db = os.fspath(db)
        if isinstance(db, bytes):
            raise StoreError("db must be a text path, not bytes")
        if _connection_shaped(db):  # Path("postgresql://u:pw@h")
            raise StoreError(f"db path {MASK} looks like a URL, a connection string or credentials; pass a URL as a "
                             "string, not a Path, and a password never (PGPASSWORD or ~/.pgpass hold it)")
        return DbTarget("sqlite", db, db)
    if not isinstance(db, str):
        raise StoreError(f"db must be {_HOW}, not {type(db).__name__}")
    if not db.strip():
        raise StoreError(f"db is empty; pass {_HOW}")
    if db != db.strip():  # never echoed: it may be a URL with a password
        raise StoreError("db has leading or trailing whitespace (a pasted value?); remove it")
    if db == ":memory:":
        return DbTarget("sqlite", db, db)
    if "://" in db:
        return _url(db)
    if _LIBPQ_WORD.search(db):
        return _keywords(db)
    if _connection_shaped(db):  # the part before ':' may be the secret too (TOKEN:@host)
        raise StoreError(f"db value {MASK} looks like a URL, a connection string or credentials but is not a "
                         f"supported one; pass {_HOW}")
    return DbTarget("sqlite", db, db)


# Other databases' connection strings: ODBC / ADO.NET / JDBC properties (``Driver=…;PWD=…``,
# ``Server=h;User Id=u;Password=pw``) and Oracle's EZConnect (``user/pw@host:1521/svc``)
_ODBC_WORD = re.compile(r"(?:^|[;\s/\\(])\s*(?:password|passwd|pwd|uid|user\s*id|user\s*name|username|server|driver|"
                        r"dsn|data\s*source|database|initial\s*catalog|address|addr|network\s*address|"
                        r"integrated\s*security|trusted_connection|provider|secret|token|api[_-]?key)\s*=",
                        re.IGNORECASE)
# (and a relative path starting user@host…: a URL without its scheme; ./a@b is a folder)
_EZCONNECT = re.compile(r"^(?!\.\.?/)(?:[^/@\s]*@|[^/@\s]+/[^/@\s]*@)|@//|@\[?[A-Za-z0-9.\-:]+\]?:\d+(?:/|$)")
_SEGMENT_USERINFO = re.compile(r"^[^:@]*:[^@]*@")  # a path segment that reads as user:secret@host


def _decoded(path: str) -> str:
    """``path`` as a reader (or a second decoder) would see it: %-escapes undone until none is
    left, then NFKC (full-width ``：`` is ``:``)."""
    for _ in range(8):
        unquoted = urllib.parse.unquote(path)
        if unquoted == path:
            break
        path = unquoted
    return unicodedata.normalize("NFKC", path)


def _connection_shaped(path: str) -> bool:
    """The one rule for what is never a file path, for a plain path, a ``Path`` and the path of a
    ``sqlite:///`` URL alike: after decoding, it reads as a URL (:func:`_url_shaped`), a libpq
    keyword string, another database's connection string (ODBC's ``PWD=``, Oracle's
    ``user/pw@host:1521/svc``) or holds a ``user:secret@host`` segment."""
    for form in dict.fromkeys((path, _decoded(path))):
        if _url_shaped(form) or _LIBPQ_WORD.search(form) or _ODBC_WORD.search(form) or _EZCONNECT.search(form):
            return True
        if any(_SEGMENT_USERINFO.match(part) for part in re.split(r"[/\\]", form)):
            return True
    return False


# user:secret@host before the first / (also after // or a scheme), as a reader or libpq would see it
_USERINFO = re.compile(r"^(?:[A-Za-z][A-Za-z0-9+.\-]*:)?/{0,2}[^/@]*:[^/]*@")
_SLASHED_USERINFO = re.compile(r"//[^/]*:[^/]*@")  # postgresql#//u:pw@h: any odd scheme separator


def _url_shaped(db: str) -> bool:
    """Whether a value that is not a supported URL still reads as one (never a file name): a
    scheme (a one-letter one is a drive only on Windows), ``user:secret@host``, a %-escaped or
    full-width ``://``."""
    folded = unicodedata.normalize("NFKC", urllib.parse.unquote(db))
    scheme = _SCHEME.match(folded)
    if scheme and (len(scheme.group(1)) > 1 or os.name != "nt"):
        return True
    return "://" in folded or bool(_USERINFO.match(folded) or _SLASHED_USERINFO.search(folded)) \
        or (folded.startswith("//") and "@" in folded)


def _url(db: str) -> DbTarget:
    scheme, _, rest = db.partition("://")
    name = scheme.lower()
    if _SQLITE.match(name):
        return _sqlite_url(scheme, rest)
    if not _POSTGRES.match(name):
        raise StoreError(f"db URL scheme {_shown_scheme(scheme)}:// is not supported; pass {_HOW}")
    _odd_character(db, "URL")
    url = "postgresql://" + rest  # the SQLAlchemy spelling (postgresql+psycopg://) is libpq's URL
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:  # an unclosed [ of an IPv6 host
        raise StoreError(f"db postgresql://{MASK} is not a valid PostgreSQL URL (e.g. "
                         "postgresql://user@host:5432/dbname)") from None
    shown = _shown_url(parts)
    params = _libpq(url, shown)
    if parts.password is not None or "password" in params:
        raise ConfigError(f"db URL {shown} carries a password: remove it and put it in PGPASSWORD or ~/.pgpass "
                          "(a URL ends up in notebooks, settings and the log)")
    _glued_values(params, shown)
    return _postgres(url, shown, params)


# the values libpq takes for its TLS and encryption modes (it checks them only when connecting)
_MODES = {"sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
          "gssencmode": ("disable", "prefer", "require"), "channel_binding": ("disable", "prefer", "require")}


def _postgres(value: str, shown: str, params: dict[str, str]) -> DbTarget:
    for key, modes in _MODES.items():
        mode = params.get(key)
        if mode is not None and mode not in modes:
            raise ConfigError(f"db {shown}: its {key} is not one of {', '.join(modes)} (lower case); "
                              "nothing was sent")
    user = params.get("user")
    if user is not None and ":" in user:  # u%3Apassword@: a password hidden in the user name
        raise ConfigError(f"db {shown} has a ':' in its user name (an escaped password?); put the password in "
                          "PGPASSWORD or ~/.pgpass")
    return DbTarget("postgresql", value, shown, _hosts(params), user if user is None or _PLAIN_NAME.match(user)
                    else MASK, params.get("service"), tuple(sorted(params)))


def _sqlite_url(scheme: str, rest: str) -> DbTarget:
    """``sqlite:///relative``, ``sqlite:////absolute``, ``sqlite://`` (SQLAlchemy's forms)."""
    path, query = rest.partition("?")[0], rest.partition("?")[2]
    if query or "#" in path:
        raise StoreError(f"db URL {scheme}://{MASK}: SQLite URL options (?…) are not supported; pass a path")
    if path in ("", "/", "/:memory:"):
        return DbTarget("sqlite", ":memory:", f"{scheme}://")
    if not path.startswith("/"):
        raise StoreError(f"db URL {scheme}://{MASK} names a host; SQLite URLs are sqlite:///path (three slashes)")
    target = urllib.parse.unquote(path[1:])
    if _connection_shaped(path[1:]) or _connection_shaped(target):  # sqlite:///u:pw@h, sqlite:///host=h password=…
        raise StoreError(f"db URL {scheme}:///{MASK} names a path that looks like a URL, a connection string or "
                         f"credentials (u:pw@host, password=…): it is never made a file; pass {_HOW}")
    return DbTarget("sqlite", target, target)


def _odd_character(value: str, what: str) -> None:
    """libpq separates keywords with ASCII whitespace only: a no-break or other Unicode space (what a
    value pasted from a web page or a chat carries), a control or an invisible format character
    would glue the next keyword — a password — to the value before it (a host name that is
    looked up and printed). Refused in one line that shows no part of the value."""
    for ch in value:
        category = unicodedata.category(ch)
        if (ch not in " \t\n\r\f\v" and (category in ("Cc", "Cf", "Zl", "Zp") or (category == "Zs" and ch != " "))) \
                or ch == "\x0b":
            raise StoreError(f"db {what} {MASK} holds the character U+{ord(ch):04X} "
                             f"({unicodedata.name(ch, 'a control character').lower()}); libpq separates keywords "
                             "(and reads URLs) with ASCII spaces only: retype it with plain spaces")


# keywords whose values libpq prints (a host it cannot resolve, a user it cannot log in): never a
# value with '=' or whitespace in it (host='h password=pw' reads as one host)
_PRINTED_KEYS = ("host", "hostaddr", "port", "user", "dbname")


def _glued_values(params: dict[str, str], shown: str) -> None:
    for key in _PRINTED_KEYS:
        value = params.get(key, "")
        if "=" in value or (key != "dbname" and any(ch.isspace() for ch in value)):
            raise ConfigError(f"db {shown}: its {key} holds '=' or a space (another keyword, a password, glued to "
                              "it?); give each keyword its own plain value and the password in PGPASSWORD or "
                              "~/.pgpass")


def _keywords(db: str) -> DbTarget:
    _odd_character(db, "keyword string")
    shown = _shown_keywords(db)
    params = _libpq(db, shown)
    _glued_values(params, shown)
    if "password" in params:
        raise ConfigError(f"db {shown} carries a password: remove it and put it in PGPASSWORD or ~/.pgpass "
                          "(a db value ends up in notebooks, settings and the log)")
    return _postgres(db, shown, params)


def _libpq(value: str, shown: str) -> dict[str, str]:
    """libpq's own reading of a URL or keyword string (never echoing the value)."""
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ConfigError("a PostgreSQL log needs psycopg: pip install 'llmlab[postgres]'") from None
    try:
        return {k: str(v) for k, v in conninfo_to_dict(value).items()}
    except Exception:  # noqa: BLE001 - libpq's message may quote the value: say it without it
        raise StoreError(f"db {shown} is not a valid PostgreSQL URL or keyword string "
                         "(e.g. postgresql://user@host:5432/dbname or 'host=... dbname=... user=...')") from None


def _hosts(params: dict[str, str]) -> tuple[str, ...]:
    hosts = [h.strip() for key in ("host", "hostaddr") for h in params.get(key, "").split(",") if h.strip()]
    return tuple(dict.fromkeys(hosts)) or ("",)


def _shown_scheme(scheme: str) -> str:
    return scheme if _PLAIN_NAME.match(scheme) else MASK


def _shown_url(parts: urllib.parse.SplitResult) -> str:
    try:
        user, host, port = parts.username, parts.hostname, parts.port
    except ValueError:  # a port that is no number, a bracket that does not close
        return f"postgresql://{MASK}"
    user = urllib.parse.unquote(user) if user is not None else None
    who = "" if user is None else f"{user if _PLAIN_NAME.match(user) else MASK}@"
    where = (host or "") + (f":{port}" if port is not None else "")
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = "&".join(f"{k}={v if _shown_value(k, v) and _SHOWN_VALUE.match(v) else MASK}"
                     if _PLAIN_NAME.match(k) else MASK for k, v in pairs)
    path = parts.path if re.fullmatch(r"/[A-Za-z0-9_.\-]*", parts.path or "/") else f"/{MASK}"
    return (f"postgresql://{who}{where}{path}" + (f"?{query}" if query else "")
            + (f"#{MASK}" if parts.fragment else ""))


def _shown_value(key: str, value: str, *, keyword: bool = False) -> bool:
    """Whether a URL query (``keyword``: a keyword string's) value may be shown: no secret's, and a
    mode only when it is one libpq knows (a password pasted into sslmode= is no mode)."""
    if key in _SECRET_KEYS or not (keyword or key in _SHOWN_QUERY):
        return False
    return key not in _MODES or value in _MODES[key]


def _shown_keywords(db: str) -> str:
    """A keyword string with the values of secret keys (and anything unreadable) masked."""
    shown = []
    for match in re.finditer(r"(\w+)\s*=\s*('(?:[^'\\]|\\.)*'|\S*)", db):
        key, value = match.group(1), match.group(2)
        safe = _shown_value(key.lower(), value.strip("'"), keyword=True) and _PLAIN_NAME.match(value.strip("'") or "x")
        shown.append(f"{key}={value if safe else MASK}")
    return " ".join(shown) or MASK


def open_store(db: Any, *, chosen_by: str | None = None) -> Store:
    """The store ``db`` names (see :func:`parse_db`). ``chosen_by``: the project file that chose
    it (./.env, pyproject.toml; or a :class:`ProjectDb`'s), which may choose only a database on this
    machine unless the user trusts its host (:func:`llmlab.base._config.check_project_database`);
    its answers are never replayed (``Store.chosen_by``)."""
    if isinstance(db, ProjectDb):
        chosen_by = chosen_by or db.chosen_by
        db = str(db)
    target = check_chosen_db(db, chosen_by) if chosen_by is not None else parse_db(db)
    # chosen_by before the log is opened: a project's log holding objects llmlab did not make is refused
    return PostgresStore(target.target, target.shown, chosen_by=chosen_by) if target.kind == "postgresql" else \
        SQLiteStore(target.target, chosen_by=chosen_by)


class ProjectDb(str):
    """A ``db`` value a project file (``chosen_by``) chose — what the magics pass for pyproject.toml's
    ``db``: opened under the project rules, and never a cache source. Copies are plain strings."""

    chosen_by: str

    def __new__(cls, value: str, chosen_by: str) -> ProjectDb:
        made = super().__new__(cls, value)
        made.chosen_by = chosen_by
        return made


# What a project file may set in a PostgreSQL db value: where to connect and how to name the session.
# Every other libpq keyword names a file libpq reads (passfile, sslkey, sslcert, sslrootcert, sslcrl),
# a server or flow it contacts (oauth_issuer, krbsrvname, service files), server settings for the
# session (options=-c search_path=...: which tables llmlab's statements reach) or how the password
# is handed over (require_auth, sslpassword): a cloned repository must not choose them (attack a7 W7).
_PROJECT_KEYWORDS = frozenset({"host", "hostaddr", "port", "dbname", "user", "application_name", "connect_timeout",
                               "sslmode", "gssencmode", "channel_binding", "target_session_attrs", "service"})


def _project_keywords(target: DbTarget, chosen_by: str) -> None:
    other = [k for k in target.keywords if k not in _PROJECT_KEYWORDS]
    if other:
        raise ConfigError(f"{chosen_by} chooses the run log {target.shown} setting {', '.join(other)}: a project file "
                          f"may set only {', '.join(sorted(_PROJECT_KEYWORDS))} (the others name files libpq reads, "
                          "servers it contacts or session settings); nothing was sent. Set such a db yourself "
                          "(LLMLAB_DB in your environment, Lab(db=...) or %config LLMLab.db = ...)")


def check_chosen_db(db: Any, chosen_by: str) -> DbTarget:
    """``db`` as a project file (``chosen_by``) chose it: parsed, and refused (ConfigError) when it
    is a PostgreSQL log off this machine that the user has not trusted, or a SQLite file outside
    the project folder and ``$LLMLAB_HOME``."""
    target = parse_db(db)
    if target.kind == "postgresql":
        check_project_database(target.shown, target.hosts, target.user, target.service, chosen_by)
        _project_keywords(target, chosen_by)
    else:
        check_project_log_file(target.target, chosen_by)
    return target
