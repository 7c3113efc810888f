"""Run configuration: modes, exclusions, limits (DESIGN §5 `--config`), validated at load time.

A mistake in the config file (an unknown mode, a typo in a key) is an error before anything runs, never a
silently ignored setting: a safety tool must not guess what its operator meant.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from connectors.finding import GLOBAL_REGION
from functions.remediators.base import EXECUTORS, MODES

DEFAULT_EXCLUDE_TAG = "cspm-remediation:exclude"
DEFAULT_MODE = "dry-run"
_FALSE_TAG_VALUES = frozenset({"false", "no", "0", "off"})


class ConfigError(ValueError):
    pass


@dataclass(frozen=True)
class RuleSettings:
    mode: str | None = None
    executor: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exclusions:
    tag: str = DEFAULT_EXCLUDE_TAG
    accounts: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    rules_per_account: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def reason(self, rule_id: str, account_id: str, resource_id: str, resource_arn: str | None) -> str | None:
        """Why this (rule, account, resource) is excluded by the allowlists, or None."""
        if account_id in self.accounts:
            return f"account {account_id} is excluded"
        if resource_id in self.resources or (resource_arn and resource_arn in self.resources):
            return f"resource {resource_id} is excluded"
        if rule_id in self.rules_per_account.get(account_id, frozenset()):
            return f"rule {rule_id} is excluded in account {account_id}"
        return None

    def tag_reason(self, tags: Mapping[str, str] | None) -> str | None:
        """A resource opts out with the exclusion tag (any value but false/no/0/off)."""
        if not tags or self.tag not in tags:
            return None
        if str(tags[self.tag]).strip().lower() in _FALSE_TAG_VALUES:
            return None
        return f"resource has tag {self.tag}={tags[self.tag]}"


@dataclass(frozen=True)
class Limits:
    max_actions_per_rule: int = 25
    max_actions_per_account: int = 100


@dataclass(frozen=True)
class Config:
    mode: str | None = None  # global mode; None → each rule's declared default
    rules: Mapping[str, RuleSettings] = field(default_factory=dict)
    exclude: Exclusions = field(default_factory=Exclusions)
    limits: Limits = field(default_factory=Limits)
    only_rules: frozenset[str] | None = None  # --rules / CSPM_RULES
    regions: frozenset[str] | None = None  # --regions / CSPM_REGIONS: the regions acted on (None: every region)
    netskope_rules: Mapping[str, str] = field(default_factory=dict)  # `netskope.rules`: rule name → rule id

    def rule(self, rule_id: str) -> RuleSettings:
        return self.rules.get(rule_id, RuleSettings())

    def mode_for(self, rule_id: str, default_mode: str, disruptive: bool) -> str:
        """Precedence: the rule's own entry > the global mode > the declared default (DESIGN §5).

        Disruptive rules ignore a global `enforce`/`dry-run`: they act only when their own entry says so.
        Notify-only rules (declared default `notify`) never go past notify.
        """
        own = self.rule(rule_id).mode
        if own is not None:
            mode = own
        elif self.mode is not None and (not disruptive or self.mode in ("off", "notify")):
            mode = self.mode
        else:
            mode = default_mode
        if default_mode == "notify" and mode in ("dry-run", "enforce"):
            return "notify"
        return mode

    def region_reason(self, region: str) -> str | None:
        """Why a finding of this region is out of scope, or None. The scope holds for every source (Netskope and
        an aggregating Security Hub report findings of regions nobody pulled from); global resources (IAM,
        account settings: region "global") belong to no region and are always in scope."""
        if self.regions is None or region in self.regions or region == GLOBAL_REGION:
            return None
        return f"region {region} is outside the configured regions ({', '.join(sorted(self.regions))})"

    def with_overrides(self, mode: str | None = None, only_rules: frozenset[str] | None = None,
                       regions: frozenset[str] | None = None) -> Config:
        """Command-line flags win over the file."""
        if mode is not None:
            _check_mode(mode, "--mode")
        return replace(
            self,
            mode=mode if mode is not None else self.mode,
            only_rules=only_rules if only_rules is not None else self.only_rules,
            regions=regions if regions else self.regions,
        )


SSM_PREFIX, S3_PREFIX = "ssm:", "s3://"
MAX_CONFIG_BYTES = 1024 * 1024  # a config is a few KB; anything near this is the wrong object


def is_remote(address: str) -> bool:
    """`ssm:<parameter name or ARN>` or `s3://bucket/key`: read with the caller's AWS credentials."""
    return address.startswith((SSM_PREFIX, S3_PREFIX))


def load_config(path: str | Path | None) -> Config:
    """The config at `path`: a local file, `ssm:/parameter-name` (a Parameter Store parameter) or
    `s3://bucket/key` (an object). JSON, or YAML when PyYAML is installed (a .yaml/.yml name, or — for a parameter
    or object — text that is not a JSON object). Every error is a ConfigError that names the address, except a
    local file that cannot be read (OSError, for the caller to word)."""
    if not path:
        return Config()
    address = str(path)
    remote = is_remote(address)
    text = read_remote(address) if remote else Path(path).read_text(encoding="utf-8")
    as_yaml = address.endswith((".yaml", ".yml")) or (remote and not address.endswith(".json")
                                                       and not text.lstrip().startswith("{"))
    if as_yaml:
        try:
            import yaml  # optional dependency
        except ImportError as error:
            raise ConfigError(f"{address}: YAML config needs PyYAML (pip install 'cspm-remediate[yaml]'; the Lambda "
                              "package leaves it out): give the config as a JSON object") from error
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ConfigError(f"{address}: not valid YAML: {' '.join(str(error).split())}") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"{address}: not valid JSON: {error}") from error
    try:
        return config_from_dict(data)
    except ConfigError as error:
        raise ConfigError(f"{address}: {error}") from error


def read_remote(address: str) -> str:
    """The text of an `ssm:` parameter or an `s3://` object, or a ConfigError saying in one line why not."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from functions.engine.sessions import CLIENT_CONFIG
    from functions.report import summarize_error

    try:
        if address.startswith(SSM_PREFIX):
            name = address.removeprefix(SSM_PREFIX)
            if not name:
                raise ConfigError(f"{address}: no parameter name after ssm: (e.g. ssm:/cspm/config)")
            # WithDecryption: a SecureString reads as its text too (a String parameter ignores the flag).
            response = boto3.client("ssm", config=CLIENT_CONFIG).get_parameter(Name=name, WithDecryption=True)
            return str(response["Parameter"]["Value"])
        bucket, _, key = address.removeprefix(S3_PREFIX).partition("/")
        if not bucket or not key:
            raise ConfigError(f"{address}: expected s3://bucket/key")
        body = boto3.client("s3", config=CLIENT_CONFIG).get_object(Bucket=bucket, Key=key)["Body"]
        data: bytes = body.read(MAX_CONFIG_BYTES + 1)
    except (ClientError, BotoCoreError) as error:
        raise ConfigError(f"{address}: cannot read it: {summarize_error(error)}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{address}: larger than {MAX_CONFIG_BYTES // 1024} KB; is it the config?")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{address}: not UTF-8 text") from None


def suggest(word: str, choices: Iterable[str]) -> str:
    """ " (did you mean X?)" for a near miss, else ""."""
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        by_case = {c.lower(): c for c in choices}
        close = [by_case[word.lower()]] if word.lower() in by_case else []
    return f" (did you mean {close[0]}?)" if close else ""


def check_known_rules(rule_ids: Iterable[str], known: Mapping[str, Any], where: str = "") -> None:
    """The one check of a configuration's rule ids against the catalog, for every path that reads one (the CLI's
    config file, the Lambdas' config and per-rule toggles): a ConfigError naming each unknown id, with a suggestion
    for a near miss. `where` prefixes the message (the file or setting)."""
    unknown = sorted(set(rule_ids) - set(known))
    if unknown:
        named = ", ".join(f"{rule_id}{suggest(rule_id, known)}" for rule_id in unknown)
        raise ConfigError(f"{where}rules: unknown rule id(s) {named}")


def config_from_dict(data: Any, known_rules: Mapping[str, Any] | None = None) -> Config:
    if not isinstance(data, Mapping):
        raise ConfigError("the config must be an object")
    _only_keys(data, {"mode", "rules", "exclude", "limits", "netskope"}, "config")
    mode = data.get("mode")
    if mode is not None:
        _check_mode(mode, "mode")
    rules = {rule_id: _rule_settings(rule_id, entry) for rule_id, entry in (data.get("rules") or {}).items()}
    if known_rules is not None:
        check_known_rules(rules, known_rules)
    return Config(
        mode=mode,
        rules=rules,
        exclude=_exclusions(data.get("exclude") or {}),
        limits=_limits(data.get("limits") or {}),
        netskope_rules=_netskope_rules(data.get("netskope", {})),
    )


def _netskope_rules(data: Any) -> dict[str, str]:
    """`{"rules": {"<Netskope rule name>": "<rule id>"}}`: extends (and overrides) the built-in name table."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError("netskope must be an object")
    _only_keys(data, {"rules"}, "netskope")
    rules = data.get("rules", {})
    if not isinstance(rules, Mapping) or not all(
        isinstance(k, str) and k.strip() and isinstance(v, str) and v.strip() for k, v in rules.items()
    ):
        raise ConfigError('netskope.rules must map Netskope rule names to rule ids, e.g. {"<rule name>": "EC2.13"}')
    return {k: v.strip() for k, v in rules.items()}


def _rule_settings(rule_id: str, entry: Any) -> RuleSettings:
    if not isinstance(entry, Mapping):
        raise ConfigError(f"rules.{rule_id} must be an object")
    _only_keys(entry, {"mode", "executor", "params"}, f"rules.{rule_id}")
    mode = entry.get("mode")
    if mode is not None:
        _check_mode(mode, f"rules.{rule_id}.mode")
    executor = entry.get("executor")
    if executor is not None and executor not in EXECUTORS:
        raise ConfigError(f"rules.{rule_id}.executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    params = entry.get("params") or {}
    if not isinstance(params, Mapping):
        raise ConfigError(f"rules.{rule_id}.params must be an object")
    _check_params(rule_id, params)
    return RuleSettings(mode=mode, executor=executor, params=dict(params))


def _check_params(rule_id: str, params: Mapping[str, Any]) -> None:
    """The rule's remediator judges its params (its params_schema, then its own construction checks), so a typo
    or a wrong type stops the run at load time with one line. Unknown rule ids are reported elsewhere."""
    from functions.engine.catalog import CATALOG  # the catalog imports every remediator: only when params exist

    entry = CATALOG.get(rule_id)
    if entry is None or not params:
        return
    problem = entry.remediator.params_problem(params)
    if problem is None:
        try:
            entry.remediator(params)
        except (TypeError, ValueError) as error:
            problem = str(error).removeprefix(f"{entry.remediator.__name__}: ")
    if problem:
        raise ConfigError(f"rules.{rule_id}.params: {problem}")


def _exclusions(data: Any) -> Exclusions:
    if not isinstance(data, Mapping):
        raise ConfigError("exclude must be an object")
    _only_keys(data, {"tag", "accounts", "resources", "rules_per_account"}, "exclude")
    per_account = data.get("rules_per_account") or {}
    if not isinstance(per_account, Mapping):
        raise ConfigError("exclude.rules_per_account must map account ids to lists of rule ids")
    tag = data.get("tag", DEFAULT_EXCLUDE_TAG)
    if not isinstance(tag, str) or not tag:
        raise ConfigError("exclude.tag must be a non-empty string")
    return Exclusions(
        tag=tag,
        accounts=_string_set(data.get("accounts"), "exclude.accounts"),
        resources=_string_set(data.get("resources"), "exclude.resources"),
        rules_per_account={
            str(account): _string_set(rules, f"exclude.rules_per_account.{account}")
            for account, rules in per_account.items()
        },
    )


def _limits(data: Any) -> Limits:
    if not isinstance(data, Mapping):
        raise ConfigError("limits must be an object")
    _only_keys(data, {"max_actions_per_rule", "max_actions_per_account"}, "limits")
    values = {}
    for key, value in data.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConfigError(f"limits.{key} must be a whole number ≥ 0, got {value!r}")
        values[key] = value
    return Limits(**values)


def _string_set(value: Any, label: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise ConfigError(f"{label} must be a list of strings")
    return frozenset(str(v) for v in value)


def _check_mode(mode: Any, label: str) -> None:
    if mode not in MODES:
        raise ConfigError(f"{label} must be one of {', '.join(MODES)}, got {mode!r}")


def _only_keys(data: Mapping[str, Any], allowed: set[str], label: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        allowed_text = ", ".join(sorted(allowed))
        raise ConfigError(f"{label}: unknown key(s) {', '.join(map(str, unknown))} (allowed: {allowed_text})")
