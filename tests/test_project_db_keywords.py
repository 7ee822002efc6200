"""A PostgreSQL db value a project file chose (``.env``, ``pyproject.toml [tool.llmlab]``) may set
only where to connect and how to name the session, even on this machine (attack a7 W7): a
keyword that names a file libpq reads (passfile, sslkey, sslcert, sslrootcert, sslcrl), a server
or flow it contacts (krbsrvname, …), session settings (options=-c search_path=…) or how the
password is handed over (require_auth, sslpassword) is a one-line ConfigError before anything
connects, in the URL and the keyword form. The user's own setting may set them."""
from __future__ import annotations

import urllib.parse

import pytest

from llmlab import ConfigError, StoreError
from llmlab.store._open import check_chosen_db, parse_db

SOURCE = "./.env (LLMLAB_DB)"
UNSAFE = {"passfile": "/tmp/p", "sslkey": "/proc/self/environ", "sslcert": "/etc/hostname",
          "sslrootcert": "/dev/zero", "sslcrl": "/tmp/c", "sslpassword": "pw-Qz7Xv9", "require_auth": "password",
          "krbsrvname": "evil", "options": "-c search_path=evil"}
SAFE = {"port": "5433", "dbname": "runs", "user": "alice", "application_name": "nb", "connect_timeout": "5",
        "sslmode": "require", "target_session_attrs": "read-write"}


def _forms(key: str, value: str) -> list[str]:
    quoted = value.replace("'", "\\'")
    return [f"postgresql://localhost/runs?{key}={urllib.parse.quote(value, safe='')}",
            f"host=localhost dbname=runs {key}='{quoted}'", f"host=/var/run/postgresql dbname=runs {key}='{quoted}'"]


@pytest.mark.parametrize("key", sorted(UNSAFE))
@pytest.mark.parametrize("form", [0, 1, 2])
def test_a_project_file_may_not_set_what_libpq_reads_or_contacts(key, form):
    db = _forms(key, UNSAFE[key])[form]
    with pytest.raises(ConfigError) as refused:
        check_chosen_db(db, SOURCE)
    message = str(refused.value)
    assert message.startswith(SOURCE) and f"setting {key}" in message and "nothing was sent" in message
    assert "\n" not in message and "pw-Qz7Xv9" not in message and "/proc/self/environ" not in message
    assert parse_db(db).kind == "postgresql"   # the user's own setting may set it


@pytest.mark.parametrize("key", sorted(SAFE))
@pytest.mark.parametrize("form", [0, 1])
def test_where_to_connect_and_the_session_name_stay_allowed(key, form):
    assert check_chosen_db(_forms(key, SAFE[key])[form], SOURCE).kind == "postgresql"


def test_an_unknown_keyword_is_refused_before_the_keyword_rule_too():
    with pytest.raises((ConfigError, StoreError)):
        check_chosen_db("postgresql://localhost/runs?oauth_issuer=https://evil.example", SOURCE)
