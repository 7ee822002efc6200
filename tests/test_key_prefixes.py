"""One list of vendor key prefixes (base/_redact.KEY_PREFIX) serves every rule that reads a key by
its look: URL path tokens, credential-valued call parameters, and the public prefix a known key is
compared without. Each vendor's key shape is tried through all three."""

from __future__ import annotations

import random
import string

import pytest

from llmlab.base._credentials import check_no_credentials
from llmlab.base._errors import InputError
from llmlab.base._redact import forget_all, public_url, remember
from llmlab.base._validate import holds_secret

# (public prefix, alphabet of the rest) for each vendor's real key shape
VENDORS = [
    ("sk-proj-", string.ascii_letters + string.digits + "_-"),
    ("sk-svcacct-", string.ascii_letters + string.digits + "_-"),
    ("sk-admin-", string.ascii_letters + string.digits + "_-"),
    ("sk-ant-api03-", string.ascii_letters + string.digits + "_-"),
    ("sk-or-v1-", string.hexdigits.lower()),
    ("sk_live_", string.ascii_letters + string.digits),      # Stripe
    ("rk_live_", string.ascii_letters + string.digits),
    ("xai-", string.ascii_letters + string.digits),
    ("gsk_", string.ascii_letters + string.digits),
    ("hf_", string.ascii_letters),
    ("ghp_", string.ascii_letters + string.digits),
    ("github_pat_", string.ascii_letters + string.digits + "_"),
    ("glpat-", string.ascii_letters + string.digits + "_-"),
    ("AIza", string.ascii_letters + string.digits + "_-"),  # Google: no separator after the prefix
]


def _key(prefix: str, alphabet: str, rng: random.Random) -> str:
    # a '-' or '_' in the tail where the vendor's alphabet has one: the long-alphanumeric rule
    # cannot catch such a key, only its prefix can
    tail = "".join(rng.choice(alphabet) for _ in range(36))
    return prefix + (tail[:10] + "-" + tail[11:] if "-" in alphabet else tail)


@pytest.fixture(autouse=True)
def _fresh_secrets():
    forget_all()
    yield
    forget_all()


@pytest.mark.parametrize(("prefix", "alphabet"), VENDORS, ids=[v[0] for v in VENDORS])
def test_key_as_url_path_segment_is_masked(prefix: str, alphabet: str) -> None:
    rng = random.Random(prefix)
    for _ in range(20):
        key = _key(prefix, alphabet, rng)
        shown = public_url(f"https://gw.example/v1/{key}/chat")
        assert key not in shown and key[len(prefix):] not in shown, shown
        assert shown.endswith("/chat")


@pytest.mark.parametrize(("prefix", "alphabet"), VENDORS, ids=[v[0] for v in VENDORS])
def test_key_as_parameter_value_is_refused(prefix: str, alphabet: str) -> None:
    rng = random.Random(prefix + "p")
    for _ in range(20):
        key = _key(prefix, alphabet, rng)
        with pytest.raises(InputError) as raised:
            check_no_credentials({"metadata": {"note": key}})
        assert key not in str(raised.value)


@pytest.mark.parametrize(("prefix", "alphabet"), VENDORS, ids=[v[0] for v in VENDORS])
def test_prefix_alone_is_no_secret_but_the_rest_is(prefix: str, alphabet: str) -> None:
    key = _key(prefix, alphabet, random.Random(prefix + "k"))
    remember([key])
    assert not holds_secret(f"model {prefix}")      # every user's key starts so: no secret
    assert holds_secret(f"model {key[len(prefix):]}")  # the private part is
    assert holds_secret(key)


@pytest.mark.parametrize("text", ["Aizawa_Hiroshi_notes_2024", "aizawa-kenji-interview-notes", "hfx_value",
                                  "skeleton-key-of-the-realm", "deploy-gpt4o-mini-2024-07-18"])
def test_words_that_merely_start_like_a_prefix_are_not_keys(text: str) -> None:
    check_no_credentials({"metadata": {"note": text}})
    assert public_url(f"https://gw.example/v1/{text}/x") == f"https://gw.example/v1/{text}/x"
