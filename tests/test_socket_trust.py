"""A PostgreSQL log a project file chooses through a unix socket counts as "this machine" only in
a standard socket folder (attack 4, F17): another folder may be any local user's, and a Linux
abstract socket (@name) has no permissions; a server there would be sent your password. The
refused socket values are tests/test_hostile.py's FOREIGN_SOCKETS (one test with the foreign hosts)."""
from __future__ import annotations

import pytest


@pytest.mark.parametrize("value", ["host=/var/run/postgresql dbname=x", "host=/run/postgresql/ dbname=x",
                                   "postgresql:///x", "postgresql://alice@%2Frun%2Fpostgresql/x",
                                   "dbname=x"])
def test_a_standard_socket_folder_is_this_machine(value):
    from llmlab.store._open import check_chosen_db

    assert check_chosen_db(value, "./.env").kind == "postgresql"


def test_a_socket_you_name_yourself_or_trust_is_allowed(monkeypatch):
    from llmlab.store._open import check_chosen_db, parse_db

    assert parse_db("host=/tmp/mine dbname=x").hosts == ("/tmp/mine",)  # your own Lab(db=...): as you say
    monkeypatch.setenv("LLMLAB_TRUSTED_HOSTS", "/tmp/mine")
    check_chosen_db("host=/tmp/mine dbname=x", "./.env")
