"""Settings from the environment: one table of variable names, read by the CLI (as flag defaults) and by the
Lambda handlers alike (DESIGN §5 ★)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

from functions.engine.automation import DEFAULT_AUTOMATION_ROLE_NAME
from functions.engine.config import (
    Config,
    ConfigError,
    RuleSettings,
    check_known_rules,
    config_from_dict,
    load_config,
)
from functions.engine.pacing import DEFAULT_MAX_WORKERS
from functions.remediators.base import MODES

log = logging.getLogger(__name__)

# setting → environment variable
ENV = {
    "netskope_url": "NETSKOPE_URL",
    "netskope_token_secret": "NETSKOPE_TOKEN_SECRET",
    "netskope_auth": "NETSKOPE_AUTH",  # v1-body (default) | header
    "prowler_input": "CSPM_PROWLER_INPUT",  # Prowler output files, comma-separated
    "role_name": "REMEDIATION_ROLE_NAME",
    "rollback_role_name": "REMEDIATION_ROLLBACK_ROLE_NAME",  # the CLI's rollback only (the target stack's RollbackRole)
    "external_id": "REMEDIATION_EXTERNAL_ID",
    "automation_role_name": "REMEDIATION_AUTOMATION_ROLE_NAME",
    "regions": "CSPM_REGIONS",
    "sources": "CSPM_SOURCE",
    "mode": "CSPM_MODE",
    "rules": "CSPM_RULES",
    "config": "CSPM_CONFIG",
    "max_workers": "CSPM_MAX_WORKERS",
    "max_calls_per_second": "CSPM_MAX_CALLS_PER_SECOND",  # per account, region and service (pacing.py)
    # Deployed only (CloudFormation sets them):
    "rule_modes": "CSPM_RULE_MODES",  # JSON {rule_id: mode}, one entry per per-rule toggle
    "ledger_table": "LEDGER_TABLE",
    # The ExternalId's Secrets Manager secret (a NoEcho parameter never sits in a function's environment);
    # REMEDIATION_EXTERNAL_ID, the id itself, stays for the CLI and wins when both are set.
    "external_id_secret": "REMEDIATION_EXTERNAL_ID_SECRET",
    "ledger_path": "CSPM_LEDGER_PATH",
    "sns_topic_arn": "SNS_TOPIC_ARN",
    "work_queue_url": "WORK_QUEUE_URL",
    "summary_delay": "CSPM_SUMMARY_DELAY_SECONDS",  # how long after a pull its SNS summary is published
}


def env(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of a setting's variable; empty counts as unset."""
    value = (environ if environ is not None else os.environ).get(ENV[name])
    return value if value else default


def _whole_number(value: str | None, name: str) -> int:
    try:
        number = int(value or 0)
    except ValueError as error:
        raise ConfigError(f"{ENV[name]} must be a whole number") from error
    if number < 0:
        raise ConfigError(f"{ENV[name]} must not be negative")
    return number


def csv(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


@dataclass(frozen=True)
class Settings:
    role_name: str | None = None
    external_id: str | None = None
    external_id_secret: str | None = None
    automation_role_name: str = DEFAULT_AUTOMATION_ROLE_NAME
    regions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    mode: str | None = None
    rules: frozenset[str] | None = None
    config_path: str | None = None
    rule_modes: Mapping[str, str] | None = None
    max_workers: int = DEFAULT_MAX_WORKERS
    netskope_url: str | None = None
    netskope_token_secret: str | None = None
    netskope_auth: str | None = None
    ledger_table: str | None = None
    ledger_path: str | None = None
    sns_topic_arn: str | None = None
    work_queue_url: str | None = None
    summary_delay: int = 900

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        def get(name: str, default: str | None = None) -> str | None:
            return env(name, default, environ)

        rule_modes_text = get("rule_modes")
        try:
            rule_modes = json.loads(rule_modes_text) if rule_modes_text else None
        except json.JSONDecodeError as error:
            raise ConfigError(f"{ENV['rule_modes']} is not valid JSON: {error}") from error
        if rule_modes is not None and not isinstance(rule_modes, dict):
            raise ConfigError(f"{ENV['rule_modes']} must be a JSON object of rule id → mode")
        max_workers = _whole_number(get("max_workers", str(DEFAULT_MAX_WORKERS)), "max_workers")
        summary_delay = min(_whole_number(get("summary_delay", "900"), "summary_delay"), 900)  # SQS maximum
        return cls(
            role_name=get("role_name"),
            external_id=get("external_id"),
            external_id_secret=get("external_id_secret"),
            automation_role_name=get("automation_role_name", DEFAULT_AUTOMATION_ROLE_NAME) or "",
            regions=tuple(csv(get("regions"))),
            sources=tuple(csv(get("sources"))),
            mode=get("mode"),
            rules=frozenset(csv(get("rules"))) or None,
            config_path=get("config"),
            rule_modes=rule_modes,
            max_workers=max_workers,
            netskope_url=get("netskope_url"),
            netskope_token_secret=get("netskope_token_secret"),
            netskope_auth=get("netskope_auth"),
            ledger_table=get("ledger_table"),
            ledger_path=get("ledger_path"),
            sns_topic_arn=get("sns_topic_arn"),
            work_queue_url=get("work_queue_url"),
            summary_delay=summary_delay,
        )

    def config(self, known_rules: Mapping[str, object] | None = None) -> Config:
        """The run config: the document (CSPM_CONFIG: a file, ssm:/name or s3://bucket/key), then the per-rule
        toggles, then the global mode, rule filter and region scope. Any problem is one ConfigError line that
        names the variable: a deployed function must fail loudly rather than run on defaults.

        Toggles and the document (the stack's precedence, README "Configuring the stack"): a rule's mode is the
        more cautious of its toggle (CSPM_RULE_MODES) and the document's `rules.<id>.mode`, in the order off <
        notify < dry-run < enforce. The toggle is the ceiling — the target accounts' roles are granted writes by
        the same toggles — and the document may only hold a rule back; its executor and params always apply."""
        try:
            config = load_config(self.config_path)
        except ConfigError as error:
            raise ConfigError(f"{ENV['config']} {error}") from None
        except OSError as error:
            reason = error.strerror or str(error)
            raise ConfigError(f"{ENV['config']} {self.config_path}: cannot read it ({reason})") from None
        if known_rules is not None:  # each source on its own, so the line names the one to fix
            check_known_rules(config.rules, known_rules, f"{ENV['config']} {self.config_path}: ")
            check_known_rules(self.rule_modes or {}, known_rules, f"{ENV['rule_modes']}: ")
        if self.rule_modes:
            # Validate the toggles' modes exactly as a config file's would be.
            try:
                config_from_dict({"rules": {r: {"mode": m} for r, m in self.rule_modes.items()}})
            except ConfigError as error:
                raise ConfigError(f"{ENV['rule_modes']}: {error}") from None
            rules = dict(config.rules)
            for rule_id, toggle in self.rule_modes.items():
                current = rules.get(rule_id, RuleSettings())
                mode = toggle if current.mode is None else min(toggle, current.mode, key=MODES.index)
                if current.mode is not None and mode != current.mode:
                    log.warning("%s: rules.%s.mode %s is held at %s by the stack's toggle for %s (the toggle is the "
                                "ceiling)", ENV["config"], rule_id, current.mode, mode, rule_id)
                rules[rule_id] = dataclasses.replace(current, mode=mode)
            config = dataclasses.replace(config, rules=rules)
        return config.with_overrides(mode=self.mode, only_rules=self.rules, regions=frozenset(self.regions) or None)
