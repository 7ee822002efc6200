"""The one atomic writer (llmlab/base/_files.py) refuses a symlink as the file to write, dangling or
not (attack 4, F16): replacing it cut the link (a shared target kept the old policy), and writing
through it would let a link a cloned repository ships put a file wherever the user may write.
A symlinked folder on the way is followed: it is the user's layout."""
from __future__ import annotations

import os

import pytest
from fakeserver import FakeServer, ModelSpec

from llmlab import InputError, Lab, routing
from llmlab.analysis._report import write_report
from llmlab.base._files import write_json, write_private

OLD = b'{"old": true}\n'


def _links(here, elsewhere, suffix: str) -> dict:
    """Every kind of link a folder may hold, each name -> (link, the file it would reach)."""
    real = elsewhere / "shared.json"
    real.write_bytes(OLD)
    (elsewhere / "hop.json").symlink_to(real)
    (elsewhere / "sub").mkdir()
    kinds = {"to a file": real, "relative": os.path.relpath(real, here), "to a link": elsewhere / "hop.json",
             "dangling": elsewhere / "missing.json", "dangling relative": "../nowhere/x.json",
             "into a missing folder": elsewhere / "no" / "such" / "x.json",
             "to itself": (here / "self").with_suffix(suffix),
             "to a folder": elsewhere / "sub"}
    links = {}
    for i, (kind, target) in enumerate(kinds.items()):
        link = here / ("self" if kind == "to itself" else f"link{i}")
        link = link.with_suffix(suffix)
        link.symlink_to(target)
        links[kind] = link
    return links


def _tree(*folders) -> dict:
    return {p: (os.readlink(p) if p.is_symlink() else p.read_bytes() if p.is_file() else None)
            for folder in folders for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def lab_with_a_run(tmp_path_factory):
    with FakeServer({"m": ModelSpec(text="fine")}) as srv, \
            Lab(base_url=srv.base_url, db=tmp_path_factory.mktemp("log") / "l.sqlite") as lab:
        lab.compare("Hi", models=["m"])
        yield lab


WRITERS = {"policy.save": lambda lab, t: routing.Always("m").save(t), "export": lambda lab, t: lab.export(t),
           "report": lambda lab, t: write_report(t, [], {"x": 1}),
           "write_private": lambda lab, t: write_private(t, b"x"),
           "write_json": lambda lab, t: write_json(t, {"a": 1}, what="the value")}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_a_symlink_is_refused_neither_cut_nor_followed_a_symlinked_folder_is(tmp_path, lab_with_a_run, writer):
    here, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    here.mkdir()
    elsewhere.mkdir()
    suffix = ".parquet" if writer == "export" else ".json"
    links = _links(here, elsewhere, suffix)
    before = _tree(here, elsewhere)
    for kind, link in links.items():
        with pytest.raises(InputError, match="it is a symbolic link, not a file; nothing was written") as err:
            WRITERS[writer](lab_with_a_run, link)
        assert "\n" not in str(err.value), kind
        assert _tree(here, elsewhere) == before, kind  # the link, its target, no file made, no .partial left
    (tmp_path / "alias").symlink_to(elsewhere / "sub")  # a symlinked folder on the way is the user's layout
    for _ in range(2):  # a new file, then over its own regular file
        WRITERS[writer](lab_with_a_run, tmp_path / "alias" / f"out{suffix}")
    assert [p.name for p in (elsewhere / "sub").iterdir()] == [f"out{suffix}"]
    assert not (elsewhere / "sub" / f"out{suffix}").is_symlink()
