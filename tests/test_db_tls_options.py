"""PostgreSQL TLS and authentication options in a ``db`` value (issue 21, item 4 leftovers).

``sslmode`` / ``sslrootcert`` / ``require_auth`` / ``sslpassword`` / ``sslkey`` in a URL or a
libpq keyword string: the value libpq opens keeps them untouched; what is shown (``shown``, every
message) masks each secret-bearing one (``sslpassword``, ``sslkey``, ``sslcert``, ``passfile``);
a mode libpq does not know (``sslmode=bogus``, ``REQUIRE``) is a one-line ConfigError at parse
time, before anything connects (libpq said it only when connecting, under "start the server")."""
from __future__ import annotations

import itertools

import pytest

from llmlab.base._errors import ConfigError
from llmlab.store._open import open_store, parse_db

SECRET = "Sekr3t-Passphrase-77q"
GOOD = {"sslmode": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
        "gssencmode": ["disable", "prefer", "require"], "channel_binding": ["disable", "prefer", "require"]}
SECRET_OPTIONS = {"sslpassword": SECRET, "sslkey": f"/home/u/{SECRET}.key", "sslcert": f"/home/u/{SECRET}.crt",
                  "passfile": f"/home/u/{SECRET}.pgpass"}


def _forms(options: dict[str, str]) -> list[str]:
    query = "&".join(f"{k}={v}" for k, v in options.items())
    words = " ".join(f"{k}={v}" for k, v in options.items())
    return [f"postgresql://alice@127.0.0.1:5432/db?{query}", f"postgresql+psycopg://alice@127.0.0.1/db?{query}",
            f"host=127.0.0.1 port=5432 dbname=db user=alice {words}"]


@pytest.mark.parametrize(("key", "mode"), [(k, m) for k, modes in GOOD.items() for m in modes])
def test_every_mode_libpq_knows_passes_through_untouched(key, mode):
    options = {key: mode, "sslrootcert": "/etc/ssl/ca.pem", "require_auth": "scram-sha-256"}
    for form in _forms(options):
        target = parse_db(form)
        assert target.kind == "postgresql" and target.target.endswith(form.partition("://")[2]), form
        assert f"{key}={mode}" in target.target and "sslrootcert=/etc/ssl/ca.pem" in target.target


@pytest.mark.parametrize("secret", list(SECRET_OPTIONS))
def test_secret_bearing_options_are_masked_where_shown(secret):
    others = {"sslmode": "verify-full", "sslrootcert": "system"}
    for form in _forms({**others, secret: SECRET_OPTIONS[secret]}):
        target = parse_db(form)
        assert SECRET not in target.shown and f"{secret}=****" in target.shown, target.shown
        assert SECRET_OPTIONS[secret] in target.target  # what libpq opens keeps it


@pytest.mark.parametrize(("key", "bad"), list(itertools.product(GOOD, ["bogus", "REQUIRE", "verify_full", "on", "1",
                                                                      SECRET])))
def test_a_mode_libpq_does_not_know_is_one_line_before_connecting(key, bad):
    for form in _forms({key: bad, "sslpassword": SECRET}):
        with pytest.raises(ConfigError) as caught:
            open_store(form)  # no server listens on 127.0.0.1:5432 here: the refusal comes first
        message = str(caught.value)
        assert f"{key} " in message and "is not one of" in message and "nothing was sent" in message, message
        assert "\n" not in message and SECRET not in message, message
