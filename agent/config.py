"""Settings, layered: defaults < repo .gptoss-agent.toml (harmless keys) < user config.toml < env < flags.

Every layer is validated the same way: an unknown key or a value of the wrong
type is a one-line error naming the file (or variable) and the key, never a
silent default.

The repository is untrusted (see DESIGN.md, "The trust boundary"): a
`.gptoss-agent.toml` it ships may set only the keys in `REPO_ALLOWED_KEYS`,
which change how the agent works but not what it may reach. The list is an
allow list on purpose, so a setting added later is user-only until someone
decides otherwise. A repository file that sets any other key is ignored for
that key and reported once, naming the file and the key. The user can lift
that for one repository by an explicit trust decision (the TUI asks), which is
remembered for the repository's path and the file's exact content: change one
byte and the file is untrusted again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import stat
import time
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, get_args, get_type_hints

from gptoss_agent.agent.approvals import APPROVAL_MODES
from gptoss_agent.agent.locations import trust_store_path, user_config_path
from gptoss_agent.agent.choices import REASONING_EFFORTS, SANDBOX_MODES
from gptoss_agent.agent.user_error import UserError

ENV_PREFIX = "GPTOSS_AGENT_"
REPO_CONFIG = ".gptoss-agent.toml"
REPO_CONFIG_MAX_BYTES = 64 * 1024

# What a repository's own file may set: how the agent works in it, never what it may reach,
# where the prompt goes, what runs unconfined or what is approved without asking.
REPO_ALLOWED_KEYS = frozenset({"test_cmd", "test_timeout", "map_tokens", "max_steps", "max_tokens_per_step",
                               "reasoning", "temperature", "top_p", "seed"})
TEST_TIMEOUT_MAX_S = 7_200  # a repository may ask for a longer suite limit, never an endless one


class ConfigError(UserError, ValueError):
    """A setting is unknown or malformed; the message names where it came from."""


@dataclass(frozen=True)
class Settings:
    """Everything a run can be configured with."""

    model: str | None = None
    backend: str = "llama"
    server_model: str | None = None  # the model name requests to an http:// backend ask for (None: the server's own)
    n_ctx: int = 32_768
    n_threads: int | None = None
    n_gpu_layers: int | None = None  # None: all layers when llama.cpp was built with a GPU
    flash_attention: bool = True
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int | None = None
    reasoning: str = "medium"
    approval: str | None = None  # None: "ask" in the TUI, "full-auto" headless
    max_steps: int = 50
    max_tokens_per_step: int = 8_192
    allow_remote: bool = False
    allow_any_model: bool = False  # load a GGUF that is not gpt-oss (experiments only)
    test_cmd: str | None = None
    test_timeout: float = 600.0  # seconds the whole test suite may run before it is stopped
    python: str | None = None  # the project's interpreter or environment folder; None: detected (tools/python_env.py)
    sandbox: str = "auto"
    map_tokens: int = 2_048  # repo map in the developer message; 0 disables it

    def __post_init__(self) -> None:
        if self.reasoning not in REASONING_EFFORTS:
            raise ConfigError(f"reasoning must be one of {', '.join(REASONING_EFFORTS)}, not {self.reasoning!r}")
        if self.approval is not None and self.approval not in APPROVAL_MODES:
            raise ConfigError(f"approval must be one of {', '.join(APPROVAL_MODES)}, not {self.approval!r}")
        if self.sandbox not in SANDBOX_MODES:
            raise ConfigError(f"sandbox must be one of {', '.join(SANDBOX_MODES)}, not {self.sandbox!r}")
        if not 1 <= self.test_timeout <= TEST_TIMEOUT_MAX_S:  # also refuses nan and inf from TOML
            raise ConfigError(f"test_timeout must be between 1 and {TEST_TIMEOUT_MAX_S} seconds, "
                              f"not {self.test_timeout}")
        if not 512 <= self.n_ctx <= 131_072:
            raise ConfigError(f"n_ctx must be between 512 and 131072 (the model's window), not {self.n_ctx}")


USER_ONLY_KEYS = frozenset(f.name for f in fields(Settings)) - REPO_ALLOWED_KEYS


@dataclass(frozen=True)
class RepoConfigReport:
    """What the repository's settings file tried and did not get."""

    path: Path
    ignored: tuple[str, ...]  # user-only keys it set, not applied
    digest: str  # SHA-256 of the exact bytes read: what a trust decision is about
    changed_since_trust: bool = False  # trusted once, but the file is different now
    refused: str = ""  # the whole file was not used (a link, not a regular file, too large, not TOML)
    invalid: tuple[str, ...] = ()  # "key: why" for unknown keys and wrong types, skipped

    def message(self) -> str:
        """One line for the user, naming the file and the keys."""
        if self.refused:
            return f"ignored {self.path}: {self.refused}"
        parts = []
        if self.ignored:
            why = " (it changed since you trusted it)" if self.changed_since_trust else ""
            parts.append(f"ignored {', '.join(self.ignored)} from {self.path}{why}: a repository's own settings "
                         f"file may not set settings that weaken safety or send data out; set them on the command "
                         f"line or in your own config ({user_config_path()})")
        if self.invalid:
            parts.append(f"ignored from {self.path}: {'; '.join(self.invalid)}")
        return "; ".join(parts)


@dataclass(frozen=True)
class LoadedSettings:
    """Settings plus where each value came from, and what the repository file was refused."""

    settings: Settings
    origins: dict[str, str] = field(default_factory=dict)  # key → "the --sandbox flag", "the user config …"
    repo_report: RepoConfigReport | None = None

    def origin(self, key: str) -> str:
        return self.origins.get(key, "the default")


def cli_flag(key: str) -> str:
    """How the command line names a setting in messages."""
    return f"the --{key.replace('_', '-')} flag"


def load_settings(repo_root: Path | None = None, *, env: Mapping[str, str] = os.environ,
                  flags: Mapping[str, Any] | None = None) -> Settings:
    """Merge every layer into one validated Settings."""
    return load_settings_with_origins(repo_root, env=env, flags=flags).settings


def load_settings_with_origins(repo_root: Path | None = None, *, env: Mapping[str, str] = os.environ,
                               flags: Mapping[str, Any] | None = None,
                               flag_origin: Callable[[str], str] = cli_flag) -> LoadedSettings:
    """Merge every layer, remembering where each value came from and what the repository was refused."""
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    report = None

    def layer(values: Mapping[str, Any], origin: Callable[[str], str]) -> None:
        for key, value in values.items():
            merged[key] = value
            origins[key] = origin(key)

    if repo_root is not None:
        values, report = _repo_layer(repo_root, env)
        layer(values, lambda key: f"the repository's {REPO_CONFIG}")
    user = user_config_path(env)
    if user.is_file():
        layer(_from_toml(user, user.read_bytes()), lambda key: f"your config {user}")
    layer(_from_env(env), lambda key: f"the environment variable {ENV_PREFIX}{key.upper()}")
    layer({k: v for k, v in (flags or {}).items() if v is not None}, flag_origin)
    return LoadedSettings(_build(merged, "settings"), origins, report)


# ---------------------------------------------------------------------- the repository's file

def _repo_layer(root: Path, env: Mapping[str, str]) -> tuple[dict[str, Any], RepoConfigReport | None]:
    """The repository file's allowed keys (all keys when the user trusts this exact content)."""
    path = root / REPO_CONFIG
    try:
        data = read_repo_config(path)
    except FileNotFoundError:
        return {}, None
    except ConfigError as exc:
        return {}, RepoConfigReport(path, (), "", refused=str(exc))
    digest = hashlib.sha256(data).hexdigest()
    try:
        raw = tomllib.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad TOML, an integer too long to convert
        return {}, RepoConfigReport(path, (), digest, refused=f"it is not valid TOML ({exc})")
    values, invalid = _valid_values(raw)  # a repository's mistakes never stop a run: skipped and reported
    user_only = tuple(sorted(set(values) & USER_ONLY_KEYS))
    trusted = trusted_digest(root, env) if user_only else None
    if not user_only or trusted == digest:
        return values, (RepoConfigReport(path, (), digest, invalid=invalid) if invalid else None)
    allowed = {k: v for k, v in values.items() if k in REPO_ALLOWED_KEYS}
    return allowed, RepoConfigReport(path, user_only, digest, changed_since_trust=trusted is not None,
                                     invalid=invalid)


def _valid_values(raw: dict[str, Any]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """(the keys with a known name and the right type, "key: why" for the others)."""
    types = _types()
    values, invalid = {}, []
    for key, value in raw.items():
        if key not in types:
            invalid.append(f"{key}: unknown setting")
            continue
        try:
            _check_type(key, value, types[key], "")
            dataclasses.replace(Settings(), **{key: value})
        except ConfigError as exc:
            invalid.append(str(exc).lstrip(": "))
            continue
        values[key] = value
    return values, tuple(invalid)


def read_repo_config(path: Path) -> bytes:
    """The file's bytes, read as untrusted data: no link followed, a regular file only, capped.

    Raises FileNotFoundError when there is none, ConfigError when it cannot be used.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if os.path.islink(path):
            raise ConfigError("it is a symbolic link (a repository's settings file must be a regular file)") from None
        raise ConfigError(f"cannot read it: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError("it is not a regular file")
        if info.st_size > REPO_CONFIG_MAX_BYTES:
            raise ConfigError(f"it is larger than {REPO_CONFIG_MAX_BYTES} bytes")
        data = b""
        while len(data) <= REPO_CONFIG_MAX_BYTES and (chunk := os.read(fd, REPO_CONFIG_MAX_BYTES + 1 - len(data))):
            data += chunk
        if len(data) > REPO_CONFIG_MAX_BYTES:
            raise ConfigError(f"it is larger than {REPO_CONFIG_MAX_BYTES} bytes")
        return data
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- trust decisions

def repo_settings_to_confirm(root: Path, env: Mapping[str, str] = os.environ) -> tuple[str, str, RepoConfigReport] | None:
    """What a trust prompt should show: (file text, its digest, the report), or None when nothing is refused.

    The prompt shows this text and, on a yes, passes this digest to `trust_repo_settings`, so the
    decision covers exactly the bytes the user read.
    """
    path = Path(root) / REPO_CONFIG
    try:
        data = read_repo_config(path)
    except (FileNotFoundError, ConfigError):
        return None
    _values, report = _repo_layer(Path(root), env)
    if report is None or report.refused or not report.ignored or report.digest != hashlib.sha256(data).hexdigest():
        return None
    return data.decode("utf-8", errors="replace"), report.digest, report


def trust_repo_settings(root: Path, digest: str, env: Mapping[str, str] = os.environ) -> None:
    """Remember that the user trusts this repository's settings file with exactly this content."""
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError("digest must be a SHA-256 hex digest")
    store = _read_store(env)
    store[_repo_key(root)] = {"sha256": digest, "trusted_at": round(time.time())}
    _write_store(store, env)


def forget_repo_trust(root: Path, env: Mapping[str, str] = os.environ) -> None:
    store = _read_store(env)
    if store.pop(_repo_key(root), None) is not None:
        _write_store(store, env)


def trusted_digest(root: Path, env: Mapping[str, str] = os.environ) -> str | None:
    entry = _read_store(env).get(_repo_key(root))
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    return digest if isinstance(digest, str) else None


def _repo_key(root: Path) -> str:
    return str(Path(root).resolve())


def _read_store(env: Mapping[str, str]) -> dict[str, Any]:
    """The remembered decisions; an unreadable or malformed store trusts nothing."""
    path = trust_store_path(env)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return {}
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
            return {}  # someone else could have written it
        data = json.loads(os.read(fd, 1 << 20))
    except (OSError, ValueError):
        return {}
    finally:
        os.close(fd)
    return data if isinstance(data, dict) else {}


def _write_store(store: dict[str, Any], env: Mapping[str, str]) -> None:
    """Private (0600 in a 0700 folder), written to a fresh temporary file and renamed over the old one."""
    path = trust_store_path(env)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, json.dumps(store, indent=1, sort_keys=True).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)


# ---------------------------------------------------------------------- parsing

def _types() -> dict[str, Any]:
    return get_type_hints(Settings)


def _from_toml(path: Path, data: bytes) -> dict[str, Any]:
    try:
        values = tomllib.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as exc:  # bad UTF-8, bad TOML, an integer too long to convert
        raise ConfigError(f"{path}: {exc}") from None
    types = _types()
    for key, value in values.items():
        if key not in types:
            raise ConfigError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(types))})")
        _check_type(key, value, types[key], str(path))
    return values


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    types = _types()
    for key, kind in types.items():
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is not None and raw != "":
            out[key] = _coerce(raw, kind, ENV_PREFIX + key.upper())
    return out


def _coerce(raw: str, kind: Any, origin: str) -> Any:
    base = next((t for t in get_args(kind) if t is not type(None)), kind)
    try:
        if base is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        return base(raw)
    except ValueError:
        raise ConfigError(f"{origin}: {raw!r} is not a valid {base.__name__}") from None


def _check_type(key: str, value: Any, kind: Any, origin: str) -> None:
    allowed = tuple(t for t in (get_args(kind) or (kind,)))
    if float in allowed and isinstance(value, int) and not isinstance(value, bool):
        return
    if bool not in allowed and isinstance(value, bool):
        raise ConfigError(f"{origin}: {key} must be {_names(allowed)}, not a boolean")
    if not isinstance(value, allowed):
        raise ConfigError(f"{origin}: {key} must be {_names(allowed)}, not {type(value).__name__}")


def _names(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types if t is not type(None))


def _build(values: dict[str, Any], origin: str) -> Settings:
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"{origin}: unknown setting(s) {', '.join(sorted(unknown))}")
    return dataclasses.replace(Settings(), **values)
