"""A PostgreSQL log a project file chooses through a unix socket counts as "this machine" only in
a standard socket folder (attack 4, F17): another folder may be any local user's, and a Linux
abstract socket (@name) has no permissions; a server there would be sent your password."""
from __future__ import annotations

import pytest

from llmlab import ConfigError, Lab

PW = "Pw9-socket-Zq7"

FOREIGN_SOCKETS = ["host=/tmp/someone_elses_dir dbname=x user=alice", "postgresql:///x?host=/tmp/evil",
                   "postgresql://alice@%2Ftmp%2Fevil/x", "host=@abstract_sock dbname=x",
                   "host=/home/bob/sock dbname=x", "host=/var/run/postgresql/../../tmp/evil dbname=x",
                   "host=/TMP dbname=x", "host=/run/postgresql,/tmp/evil dbname=x",
                   "host=/tmp dbname=x", "postgresql:///x?host=/tmp", "host=/tmp/ port=5999 dbname=x"]


@pytest.mark.parametrize("value", FOREIGN_SOCKETS)
def test_a_project_dotenv_cannot_choose_a_socket_in_another_folder(tmp_path, monkeypatch, value):
    monkeypatch.setenv("PGPASSWORD", PW)
    (tmp_path / ".env").write_text(f"LLMLAB_DB={value}\n")
    with pytest.raises(ConfigError, match="LLMLAB_TRUSTED_HOSTS") as info:
        Lab(base_url="http://127.0.0.1:9/v1")
    assert "password" in str(info.value) and PW not in str(info.value)


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
