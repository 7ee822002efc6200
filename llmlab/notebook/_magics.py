"""``%%llm`` / ``%llm`` IPython magics: parse the line, call the ``Lab``, display the result.

``%load_ext llmlab`` registers them. Settings live on the ``LLMLab`` configurable
(``%config LLMLab.base_url = "..."``), seeded from ``[tool.llmlab]`` in ./pyproject.toml.
Nothing here measures, prices or stores anything: that is the engine's job.
"""
from __future__ import annotations

import difflib
import os
import textwrap
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.display import display
from traitlets import Bool, CaselessStrEnum, Int, List, TraitError, Unicode, validate
from traitlets.config import Configurable

from ..base._config import (
    BASE_URL_VARS,
    DOTENV,
    check_project_endpoint,
    default_base_url,
    default_db,
    read_dotenv,
    read_project_file,
    trusted_default_key,
    trusted_key_vars,
)
from ..base._credentials import remember_keys
from ..base._display import clean_frame, table_text
from ..base._errors import ConfigError, InputError, LLMLabError, StoreError
from ..base._redact import public_url, redact_shown
from ..base._validate import check_binding_name, check_int, check_url, error_line, is_env_name, whole_number
from ..engine._options import MAX_CONCURRENCY, check_max_tokens
from ..store._open import ProjectDb, check_chosen_db, parse_db
from ._board import Board, board_html, board_text, session_costs
from ._magic_options import MagicOptions, OptionError, interpolate, parse_options

__all__ = ["LLMLab", "LLMMagics", "load_ipython_extension", "unload_ipython_extension"]

# Settings the Lab is built from: changing one means building a new Lab.
_ENGINE_TRAITS = ("base_url", "api_key_env", "db", "concurrency", "max_tokens")


class LLMLab(Configurable):
    """Settings for the ``%%llm`` magics (``%config LLMLab.<name> = ...``)."""

    also_scrub: tuple = ()  # other configurables whose .config holds %config values (the shell)
    on_config: Any = None  # called with the names a %config line set, even to the value they had

    def update_config(self, config: Any) -> None:
        """%config goes through here: an explicit setting counts as the user's own, even when
        it restates the current value (e.g. adopting an endpoint a project file chose)."""
        section = config["LLMLab"] if "LLMLab" in config else {}
        names = [n for n in section if self.has_trait(n)]
        super().update_config(config)
        if names and self.on_config is not None:
            self.on_config(names)

    base_url = Unicode(None, allow_none=True,
                       help="OpenAI-compatible endpoint, e.g. http://localhost:4000/v1 "
                            "(default: $LLMLAB_BASE_URL, else the embedded local endpoint).").tag(config=True)
    default_models = List(Unicode(), help="Models used when a cell gives no model=.").tag(config=True)
    concurrency = Int(8, help="Calls in flight at once.").tag(config=True)
    max_tokens = Int(512, help="Default max_tokens per call.").tag(config=True)
    cache = Bool(True, help="Answer repeated identical requests from the response cache.").tag(config=True)
    api_key_env = Unicode(None, allow_none=True,
                          help="NAME of the environment variable holding the API key "
                               "(never the key itself).").tag(config=True)
    db = Unicode(None, allow_none=True, help="Run log: a SQLite path or a postgresql:// URL without password "
                 "(default LLMLAB_DB, else $LLMLAB_HOME/runs.sqlite).").tag(config=True)
    widgets = CaselessStrEnum(["auto", "on", "off"], "auto",
                              help="Live ipywidgets columns: auto (in a Jupyter kernel), on, off.").tag(config=True)

    @validate("api_key_env")
    def _check_api_key_env(self, proposal):
        value = proposal["value"]
        if value is not None and not is_env_name(value):
            self._forget_config_value("api_key_env", value)
            # Never echo the value: it may be a pasted key.
            raise TraitError(
                "LLMLab.api_key_env must be the NAME of an environment variable such as "
                "'OPENROUTER_API_KEY' (upper case, digits, underscores), not a key; put the key "
                "in that variable or in ./.env"
            )
        return value

    def _forget_config_value(self, name: str, value: Any) -> None:
        # %config keeps what it was given in the config objects; don't keep a pasted key there.
        for owner in (self, *self.also_scrub):
            config = owner.config  # read now: update_config replaces the object
            section = config.get("LLMLab") if "LLMLab" in config else None
            if section is not None and section.get(name) == value:
                del section[name]

    @validate("concurrency", "max_tokens")
    def _check_positive(self, proposal):
        # The engine's own rules (llmlab.base._validate), so %config refuses what Lab(...) would.
        name, value = proposal["trait"].name, proposal["value"]
        try:
            if name == "max_tokens":
                return check_max_tokens(f"LLMLab.{name}", value)
            return check_int(f"LLMLab.{name}", value, 1, MAX_CONCURRENCY)
        except InputError as exc:
            raise TraitError(str(exc)) from None

    @validate("db")
    def _check_db(self, proposal):
        # The store's one parser: a value it refuses (a password in it, a URL it cannot open) is
        # not kept in the config, and its secrets are not echoed.
        value = proposal["value"]
        if value is None:
            return value
        try:
            parse_db(value)
        except (ConfigError, StoreError) as exc:
            self._forget_config_value("db", value)
            raise TraitError(f"LLMLab.db: {exc}") from None
        return value

    @validate("base_url")
    def _check_url(self, proposal):
        value = proposal["value"]
        if value is None:
            return value
        try:
            return check_url(value, "LLMLab.base_url")
        except ConfigError as exc:
            raise TraitError(str(exc)) from None


# --------------------------------------------------------------------------- pyproject

def read_pyproject(path: Path | None = None) -> dict[str, Any]:
    """``[tool.llmlab]`` of ./pyproject.toml (keys with dashes normalised), or {}."""
    path = path or Path.cwd() / "pyproject.toml"
    if not path.exists():  # a FIFO or a device too: refused below with a warning
        return {}
    import tomllib  # Python ≥ 3.11 (requires-python)

    raw = read_project_file(path, str(path))  # bounded, never a FIFO or /proc file (warned)
    if raw is None:
        return {}
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        _warn(f"ignoring {path}: {exc}")
        return {}
    except RecursionError:  # tomllib recurses once per nesting level (JSON goes through base._json)
        _warn(f"ignoring {path}: TOML nested too deep to read")
        return {}
    section = data.get("tool", {}).get("llmlab", {})
    return {str(k).replace("-", "_"): v for k, v in section.items()} if isinstance(section, dict) else {}


def apply_settings(settings: LLMLab, values: dict[str, Any], source: str) -> list[str]:
    """Set the known traits from ``values``; bad values are warned about, not fatal."""
    applied = []
    for name, value in values.items():
        if not settings.has_trait(name) or not settings.trait_metadata(name, "config"):
            continue  # other tools (the CLI, routing) keep their settings here too
        try:
            setattr(settings, name, value)
            applied.append(name)
        except TraitError as exc:
            _warn(f"{source}: {exc}")
    return applied


_PROJECT = "pyproject.toml"
_DOTTED = "./pyproject.toml [tool.llmlab]"


def _untrusted_target(name: str, value: Any) -> str | None:
    """Why a project file may not choose this endpoint or log (off this machine, host not
    trusted: see llmlab.base._config's trust rule), or None."""
    if not isinstance(value, str):
        return None
    try:
        if name == "base_url":
            check_project_endpoint(value, _PROJECT, trusted_default_key())
        else:
            check_chosen_db(value, _PROJECT)
    except (ConfigError, StoreError) as exc:
        return str(exc)
    return None


def _shown_value(name: str, value: Any) -> Any:
    if name == "db" and isinstance(value, str):
        try:
            return parse_db(value).shown
        except (ConfigError, StoreError):
            return "****"  # refused when the Lab opens it; its secrets are never shown
    return public_url(value) if name == "base_url" else value


def _resolved_default(name: str) -> tuple[Any, str]:
    """What an unset base_url or db resolves to, and from where (what the Lab will use)."""
    if name == "db":
        value, chosen_by = default_db()
        where = "LLMLAB_DB" if os.environ.get("LLMLAB_DB") else chosen_by or "$LLMLAB_HOME/runs.sqlite"
        return _shown_value("db", str(value)), f"default: {where}"
    for variable in BASE_URL_VARS:
        if os.environ.get(variable):
            return public_url(os.environ[variable]), f"default: ${variable}"
    dotenv = read_dotenv()
    found = next((v for v in BASE_URL_VARS if dotenv.get(v)), None)
    if found is not None:
        return public_url(dotenv[found]), f"default: {found} in ./.env"
    return None, "default: the embedded local endpoint"


def _shown_setting(name: str, value: Any) -> str:
    return repr(_shown_value(name, value))


def _notice(message: str) -> None:
    import sys

    print(f"llmlab: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    import warnings

    warnings.warn(message, stacklevel=3)


# --------------------------------------------------------------------------- display

class _Report:
    """The static record of a cell: escaped columns (HTML) / columns + metrics table (text).

    In HTML front ends the metrics table comes from the returned ``Result`` (its Out[]
    display); a terminal shows only text reprs, so the text form carries the table itself.
    """

    def __init__(self, board: Board, summary: Any = None):
        self.columns = board.snapshot()
        self.summary = summary

    def _repr_html_(self) -> str:
        return board_html(self.columns)

    def __repr__(self) -> str:
        text = board_text(self.columns)
        if self.summary is not None and len(self.summary):
            text += "\n\n" + table_text(self.summary)
        return text


class _StaticView:
    """No widget front end (terminal IPython, nbval): collect events, show once at the end."""

    def __init__(self, board: Board):
        self.board = board

    def on_event(self, event: Any) -> None:
        self.board.apply(event)

    def finish(self, summary: Any = None) -> None:
        display(_Report(self.board, summary))

    def discard(self) -> None:
        """The call failed before anything ran: show nothing (the error says it all)."""


class _WidgetView(_StaticView):
    """Live ipywidgets columns while streaming, replaced by the static escaped HTML at the end
    so the saved notebook keeps a readable result without widget state (trusted or not)."""

    def __init__(self, board: Board):
        super().__init__(board)
        from ._widgets import LiveColumns

        self.live = LiveColumns(board)
        self.handle = display(self.live.box, display_id=True)

    def on_event(self, event: Any) -> None:
        self.live.on_event(event)

    def finish(self, summary: Any = None) -> None:
        self.live.flush()
        self.handle.update(_Report(self.board, summary))
        # Not closed: a page reloaded mid-run cannot restore widgets until the cell ends (the
        # kernel is busy), and then shows these columns' final state instead of "model not found".
        self.live.stop()

    def discard(self) -> None:
        self.live.close()
        self.handle.update(_Empty())


class _Empty:
    def _repr_html_(self) -> str:
        return ""

    def __repr__(self) -> str:
        return ""


# --------------------------------------------------------------------------- the magics

_LINE_HELP = textwrap.dedent("""\
    %%llm model=a,b [key=value ...]     (cell magic; the cell body is the prompt)
        model=       comma list of models (or %config LLMLab.default_models)
        system=      system message            temperature=  0–2
        history=     a variable with the earlier turns (a list of {"role", "content"} messages, or
                     a Result: its messages and first answer); the cell body is the next user turn
        max_tokens=  1–2,000,000               top_p=        0–1
        stream=      true/false                cache=        true/false
        n=           repeats per model, 1–1000 out=          variable for the Result
        timeout=     seconds                   retries=      extra attempts, 0–100
        fallback=    backup chain for a single model → lab.complete()
        batch=       true: through the endpoint's Batch API (half price where offered, results within
                     24 h; lab.batch_resume(run_id) collects them after a restart); auto: where offered
        model=auto policy=NAME [task=T]   the routing policy in variable NAME picks the model → lab.route()
        every other keyword of lab.compare's request body by its name (seed=7 stop=END
        reasoning_effort=high response_format='{"type": "json_object"}' …);
        body.NAME=   any other body key for your endpoint (body.top_k=40); any other key is an error.
        values: numbers, true/false, null, '{"json": 1}', quoted text; commas make lists.
        {{name}}, {{obj.attr}}, {{rows[0]}} in the prompt come from your variables.
    %llm models          the endpoint's models (with prices when known)
    %llm config          current settings (%config LLMLab.<name> = ... to change)
    %llm history [n]     the last n calls from the run log (default 10)
    %llm cost            this session's spend per model (cache hits $0; an unknown price: unknown)
    %llm prices [text]   the price sheet (optionally filtered)
    %llm compare         open the comparison widget
    %llm grade [run=ID] [models=a,b] [against=M] [who=NAME] [name=G] [seed=N] [reveal=false]
                         blind pairwise grading of a run's answers (default: this session's last run);
                         votes go straight into the log (lab.labels()), a re-run resumes where it stopped
    %llm help            this text""")
_SUBCOMMANDS = ("models", "config", "history", "cost", "prices", "compare", "grade", "help")
_GRADE_KEYS = ("run", "models", "against", "who", "name", "seed", "reveal")
_HISTORY_COLUMNS = ["id", "run_id", "started_at", "requested_model", "status", "latency_s", "ttft_s",
                    "completion_tokens", "cost_usd", "cached", "prompt", "response_text"]


@magics_class
class LLMMagics(Magics):
    """``%%llm`` runs a prompt across models; ``%llm <command>`` inspects the lab."""

    def __init__(self, shell):
        super().__init__(shell)
        # Not parent=shell: a bad value left in the shell's config by an earlier %config
        # would then make construction (and %load_ext) fail. Values are applied one by one.
        self.settings = LLMLab()
        self.settings.also_scrub = (shell,)
        profile = dict(shell.config["LLMLab"]) if "LLMLab" in shell.config else {}
        self.sources = {name: "IPython config" for name in
                        apply_settings(self.settings, profile, "IPython config")}
        self._apply_project(read_pyproject())
        self.settings.observe(self._engine_setting_changed, names=list(_ENGINE_TRAITS))
        self.settings.observe(self._setting_changed)
        self.settings.on_config = self._configured
        shell.configurables.append(self.settings)
        self._lab = None
        self.run_ids: list[str] = []  # runs started by this magics instance: the "session"

    # -- the Lab ----------------------------------------------------------------------------
    @property
    def lab(self):
        """The Lab built from the current settings (built on first use)."""
        if self._lab is None:
            self._lab = self.new_lab()
        return self._lab

    def _apply_project(self, project: dict[str, Any]) -> None:
        """Settings from ./pyproject.toml: a cloned repository's file. It may choose the endpoint,
        never which of your secrets is sent there (see _project_key_var); say what it chose."""

        key_var = project.pop("api_key_env", None)
        for name in ("base_url", "db"):
            problem = _untrusted_target(name, project.get(name))
            if problem:
                _notice(f"ignoring {name} from ./pyproject.toml: {problem}")
                del project[name]
        self.sources.update({name: _PROJECT for name in
                             apply_settings(self.settings, project, f"{_PROJECT} [tool.llmlab]")})
        if key_var is not None:
            if key_var == self.settings.api_key_env:
                pass  # the user's own configuration already names it
            elif isinstance(key_var, str) and key_var in trusted_key_vars():
                if apply_settings(self.settings, {"api_key_env": key_var}, f"{_PROJECT} [tool.llmlab]"):
                    self.sources["api_key_env"] = f"{_PROJECT} (trusted: LLMLAB_TRUSTED_KEY_VARS)"
            else:
                shown = key_var if isinstance(key_var, str) and is_env_name(key_var) else "<not a name>"
                _notice(f"ignoring api_key_env = {shown!r} from ./pyproject.toml: a project file cannot choose "
                        f"which secret is sent; if you trust it, %config LLMLab.api_key_env = {shown!r} or add "
                        "it to LLMLAB_TRUSTED_KEY_VARS in your environment")
        chosen = [f"{name}={_shown_setting(name, getattr(self.settings, name))}"
                  for name in ("base_url", "api_key_env", "db") if self.sources.get(name, "").startswith(_PROJECT)]
        if chosen:
            key, mine = self._project_key_var(), self.settings.api_key_env
            key_note = "" if key is None else f"; key variable sent there: {key or 'none'}"
            if key is not None and mine and key != mine:
                key_note += (f" (your api_key_env {mine!r} is not sent to an endpoint a project file chose; "
                             f"to send it, add {mine} to LLMLAB_TRUSTED_KEY_VARS or adopt the endpoint with "
                             "%config LLMLab.base_url = ...)")
            if self.sources.get("db") == _PROJECT:
                key_note += "; its log is not a cache source (answers are stored there, never replayed from it)"
            _notice(f"./pyproject.toml [tool.llmlab] sets {', '.join(chosen)}{key_note}")

    def _project_key_var(self) -> str | None:
        """For an endpoint chosen by ./pyproject.toml: the key variable to send — one set with
        %config in this session or listed in LLMLAB_TRUSTED_KEY_VARS, else a trusted default, else
        "" for none (a name from the IPython profile was meant for the profile's endpoint). None
        when the user chose the endpoint."""
        if not self.sources.get("base_url", "").startswith(_PROJECT):
            return None
        name = self.settings.api_key_env
        return name if self._paired(name) else trusted_default_key() or ""

    def _paired(self, name: str | None) -> bool:
        """Whether the user paired this key variable with whatever endpoint is used: set with
        %config in this session, or listed in LLMLAB_TRUSTED_KEY_VARS."""
        return bool(name) and (self.sources.get("api_key_env") == "%config" or name in trusted_key_vars())

    def _lab_key_var(self) -> str | None:
        """The api_key_env the Lab is built with. An endpoint ./.env chooses (no base_url set, none
        in the environment) gets the profile's variable only when paired; otherwise the resolver's
        rule (that ./.env's own key) applies."""
        project = self._project_key_var()
        if project is not None:
            return project
        name = self.settings.api_key_env
        if self.settings.base_url is None and default_base_url()[1] == DOTENV and not self._paired(name):
            return None
        return name

    def new_lab(self):
        from ..engine._lab import Lab

        s = self.settings
        db = ProjectDb(s.db, _DOTTED) if s.db is not None and self.sources.get("db") == _PROJECT else s.db
        return Lab(base_url=s.base_url, api_key_env=self._lab_key_var(), db=db,
                   concurrency=s.concurrency, max_tokens=s.max_tokens)

    def _engine_setting_changed(self, change) -> None:
        self.close()

    def _setting_changed(self, change) -> None:
        self.sources[change["name"]] = "%config"

    def _configured(self, names: list[str]) -> None:
        adopted = [n for n in names if n in _ENGINE_TRAITS and self.sources.get(n) != "%config"]
        self.sources.update({name: "%config" for name in names})
        if adopted:
            self.close()  # e.g. a project's endpoint adopted: the next Lab sends your key there

    def close(self) -> None:
        if self._lab is not None:
            lab, self._lab = self._lab, None
            lab.close()

    def _checked_lab(self):
        try:
            return self.lab
        except Exception as exc:  # ConfigError and friends: one line, no traceback
            raise UsageError(error_line(exc)) from None

    # -- dispatch ---------------------------------------------------------------------------
    @property
    def _ip(self) -> Any:
        """The shell (Magics types it Optional; it is always set once registered)."""
        if self.shell is None:
            raise UsageError("llmlab's magics are not registered with an IPython shell")
        return self.shell

    @line_cell_magic
    def llm(self, line: str, cell: str | None = None):
        """Run a prompt across models (``%%llm``) or inspect the lab (``%llm help``)."""
        self._scrub_shell_config()
        # the key values are known secrets before the line is parsed, checked or echoed (F7/F8)
        remember_keys(names=[self.settings.api_key_env or ""])
        if cell is None:
            return self._line_command(line)
        return self._run_cell(line, cell)

    def _scrub_shell_config(self) -> None:
        # In a kernel the shell (ZMQInteractiveShell) merges %config values after LLMLab has
        # refused them, so a refused key-like api_key_env can linger there; drop it.
        config = self._ip.config
        section = config["LLMLab"] if "LLMLab" in config else {}
        value = section.get("api_key_env")
        if isinstance(value, str) and not is_env_name(value):
            del section["api_key_env"]

    # -- %%llm --------------------------------------------------------------------------------
    def _run_cell(self, line: str, cell: str):
        opts = self._parse(line)
        prompt = self._conversation(opts, self._prompt(cell))
        policy = self._policy(opts.policy)
        lab = self._checked_lab()
        board = Board(opts.models if policy is None else (policy.needs() or opts.models))
        view = self._view(board)
        try:
            result = self._call(lab, opts, prompt, view.on_event, policy)
        except KeyboardInterrupt:
            self._remember(board.run_ids)
            board.cancel_unfinished()
            view.finish()
            raise
        except Exception as exc:
            view.finish() if board.records else view.discard()
            if isinstance(exc, LLMLabError):
                raise UsageError(error_line(exc)) from None
            raise
        self._remember([result.run_id])
        view.finish(result.summary())
        if opts.out:
            self._ip.user_ns[opts.out] = result
        return result

    def _parse(self, line: str) -> MagicOptions:
        defaults = {"model": list(self.settings.default_models), "cache": self.settings.cache}
        try:
            opts = parse_options(line, known_defaults=defaults)
            if opts.out:
                check_binding_name(opts.out, "out", getattr(self.shell, "user_ns_hidden", {}))
            return opts
        except (OptionError, LLMLabError) as exc:
            raise UsageError(f"%%llm: {exc}") from None

    def _prompt(self, cell: str) -> str:
        body = cell.strip("\r\n")
        if not body.strip():
            raise UsageError("%%llm: the cell body is the prompt, and it is empty.")
        try:
            return interpolate(body, self._ip.user_ns)
        except OptionError as exc:
            raise UsageError(f"%%llm: {exc}") from None

    def _view(self, board: Board) -> _StaticView:
        return _WidgetView(board) if self._use_widgets() else _StaticView(board)

    def _use_widgets(self) -> bool:
        mode = self.settings.widgets.lower()
        if mode == "off":
            return False
        import importlib.util

        if importlib.util.find_spec("ipywidgets") is None:
            return False
        # "auto": only a kernel (ZMQ shell) has a front end that can render widgets.
        return mode == "on" or getattr(self.shell, "kernel", None) is not None

    def _policy(self, name: str | None):
        """The routing policy a ``policy=NAME`` names, from the user's variables."""
        if name is None:
            return None
        from ..routing import Policy

        value = self._ip.user_ns.get(name)
        if not isinstance(value, Policy):
            what = "is not defined" if name not in self._ip.user_ns else f"holds a {type(value).__name__}"
            raise UsageError(f"%%llm: policy={name}: the variable {what}; assign a routing policy to it, e.g. "
                             f"{name} = routing.load_policy('policy.json')")
        return value

    def _conversation(self, opts: MagicOptions, prompt: str) -> Any:
        """The prompt, after the earlier turns a ``history=NAME`` variable holds."""
        if opts.history is None:
            return prompt
        value = self._ip.user_ns.get(opts.history)
        from ..engine._results import Result

        if isinstance(value, Result):
            value = value.conversation()
        if not isinstance(value, list) or not all(isinstance(m, dict) for m in value):
            what = "is not defined" if opts.history not in self._ip.user_ns else f"holds a {type(value).__name__}"
            raise UsageError(f"%%llm: history={opts.history}: the variable {what}; assign it a list of "
                             "{'role': ..., 'content': ...} messages (or a Result, e.g. out=NAME of an earlier cell)")
        return [*value, {"role": "user", "content": prompt}]

    def _call(self, lab, opts: MagicOptions, prompt: Any, on_event, policy=None):
        # The parser built the same CallOptions the Python API builds; hand its keywords over.
        keywords = opts.options.replace(on_event=on_event).given()
        if policy is not None:
            return lab.route(prompt, policy=policy, task=opts.task, **keywords)
        if opts.fallback:
            return lab.complete(prompt, models=[*opts.models, *opts.fallback], **keywords)
        if opts.options.batch:  # the Batch API is a sweep's: a sweep of this one prompt, its bar shown
            return lab.sweep([prompt], models=opts.models, **keywords)
        keywords.pop("batch", None)  # batch=false: the default, live
        return lab.compare(prompt, models=opts.models, **keywords)

    def _remember(self, run_ids) -> None:
        for run_id in run_ids:
            if run_id and run_id not in self.run_ids:
                self.run_ids.append(run_id)

    # -- %llm <command> -----------------------------------------------------------------------
    def _line_command(self, line: str):
        words = line.split()
        command, args = (words[0].lower(), words[1:]) if words else ("help", [])
        if command not in _SUBCOMMANDS:
            close = difflib.get_close_matches(command, _SUBCOMMANDS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"%llm: unknown command {command!r}.{hint} Try %llm help.")
        return getattr(self, f"_cmd_{command}")(args)

    def _cmd_help(self, args):
        print(_LINE_HELP)

    def _cmd_models(self, args):
        self._no_args("models", args)

        return clean_frame(self._engine_call(lambda lab: lab.list_models()))

    def _cmd_prices(self, args):
        frame = self._engine_call(lambda lab: lab.prices.to_frame())
        if args:
            needle = " ".join(args).lower()
            frame = frame[frame["model"].str.lower().str.contains(needle, regex=False)]
        return frame.reset_index(drop=True)

    def _cmd_config(self, args):
        self._no_args("config", args)
        import pandas as pd

        rows = [{"setting": name, "value": _shown_value(name, getattr(self.settings, name)),
                 "source": self.sources.get(name, "default")}
                for name in self.settings.trait_names(config=True)]
        for row in rows:
            if row["source"] == "default" and row["value"] is None and row["setting"] in ("base_url", "db"):
                row["value"], row["source"] = _resolved_default(row["setting"])
        return pd.DataFrame(rows).sort_values("setting").reset_index(drop=True)

    def _cmd_history(self, args):
        n = whole_number(args[0]) if len(args) == 1 else 10 if not args else None
        if not n:  # None (not a plain number: '²', '1e3', two words) or 0
            raise UsageError("%llm history [n]: n must be a positive whole number.")

        frame = self._engine_call(lambda lab: lab.runs(limit=n))
        # model text must not drive the terminal
        return clean_frame(frame[[c for c in _HISTORY_COLUMNS if c in frame.columns]])

    def _cmd_cost(self, args):
        self._no_args("cost", args)

        frames = [self._engine_call(lambda lab, r=r: lab.runs(run_id=r)) for r in self.run_ids]
        return session_costs(frames)

    def _cmd_compare(self, args):
        self._no_args("compare", args)
        from ._widgets import CompareWidget

        # Its own Lab: a later %config change rebuilds (and closes) the magics' Lab, and a widget
        # left open in another cell must keep working.
        try:
            lab = self.new_lab()
        except Exception as exc:
            raise UsageError(error_line(exc)) from None
        return CompareWidget(lab=lab)

    def _cmd_grade(self, args):
        from ._grading import GradingWidget

        options = _grade_options(args)
        run_id = options.pop("run", None) or (self.run_ids[-1] if self.run_ids else None)
        if run_id is None:
            lab = self._checked_lab()
            run_id = lab.last_run_id
        if run_id is None:
            raise UsageError("%llm grade: no run to grade yet; run a sweep or a %%llm cell first, or pass run=ID")
        runs = self._engine_call(lambda lab: lab.runs(run_id=run_id))
        if runs.empty:
            raise UsageError(f"%llm grade: run {run_id!r} has no rows in the log")
        try:
            return GradingWidget(self.lab, runs, **options)
        except LLMLabError as exc:
            raise UsageError(f"%llm grade: {error_line(exc)}") from None

    @staticmethod
    def _no_args(command: str, args) -> None:
        if args:
            raise UsageError(f"%llm {command} takes no arguments (got {' '.join(args)!r}).")

    def _engine_call(self, fn):
        lab = self._checked_lab()
        try:
            return fn(lab)
        except Exception as exc:  # unreachable endpoint etc.: one line for the user
            raise UsageError(f"%llm: {error_line(exc)}") from None


def _grade_options(args: list[str]) -> dict[str, Any]:
    """``key=value`` words of ``%llm grade`` as GradingWidget keywords (UsageError for anything else)."""
    options: dict[str, Any] = {}
    for word in args:
        key, sep, value = word.partition("=")
        if not sep or key not in _GRADE_KEYS or not value:
            close = difflib.get_close_matches(key, _GRADE_KEYS, n=1)
            hint = f" Did you mean {close[0]}=?" if close else ""
            raise UsageError(f"%llm grade: {redact_shown(word)!r} is not one of "
                             f"{', '.join(k + '=' for k in _GRADE_KEYS)}.{hint}")
        if key == "models":
            options["models"] = [m for m in value.split(",") if m]
        elif key == "seed":
            seed = whole_number(value)
            if seed is None:
                raise UsageError(f"%llm grade: seed= must be a whole number, not {value!r}")
            options["seed"] = seed
        elif key == "reveal":
            if value.lower() not in ("true", "false"):
                raise UsageError(f"%llm grade: reveal= is true or false, not {value!r}")
            options["reveal"] = value.lower() == "true"
        else:
            options["grading" if key == "name" else key] = value
    return options


# --------------------------------------------------------------------------- extension hooks

def load_ipython_extension(ip) -> None:
    """``%load_ext llmlab`` (llmlab/__init__.py delegates here)."""
    if "LLMMagics" not in ip.magics_manager.registry:
        ip.register_magics(LLMMagics(ip))


def unload_ipython_extension(ip) -> None:
    """``%unload_ext llmlab`` / ``%reload_ext llmlab``: close the Lab, drop the settings."""
    magics = ip.magics_manager.registry.pop("LLMMagics", None)
    if magics is None:
        return
    magics.close()
    if magics.settings in ip.configurables:
        ip.configurables.remove(magics.settings)
    for kind in ("line", "cell"):
        ip.magics_manager.magics[kind].pop("llm", None)
