"""The Grafana dashboard and the alerting rules query only metrics the workers export, and
every alert points to its section of the documentation's runbook."""
from __future__ import annotations

import json
import re
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client import REGISTRY

import userprov.runtime.metrics  # noqa: F401 - registers the metrics
from userprov.invitation_mailing import mailer  # noqa: F401 - the email counters' labels

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> set[str]:
    return {family.name + suffix for family in REGISTRY.collect() if family.name.startswith("userprov_")
            for suffix in SUFFIXES.get(family.type, ("",))}


def named_in(expression: str) -> set[str]:
    return set(re.findall(r"\buserprov_[a-z_]+", expression))


def alert_rules() -> list[dict]:
    return yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yaml").read_text())["groups"][0]["rules"]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "userprov-dashboard.json").read_text())
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_every_query_is_valid_promql() -> None:
    queries = [e.replace("$__rate_interval", "5m") for e in dashboard_expressions()] + [r["expr"] for r in alert_rules()]
    for query in queries:
        promql_parser.parse(query)
    with pytest.raises(ValueError):  # so that the check above can fail
        promql_parser.parse("max by (service (userprov_ready)")


def test_the_dashboard_queries_exported_metrics() -> None:
    expressions = dashboard_expressions()
    used = set().union(*map(named_in, expressions))
    assert used and used <= exported(), used - exported()
    for wanted in ("userprov_outbox_lag_seconds", "userprov_parked_messages", "userprov_emails_total",
                   "userprov_message_handling_seconds_bucket", "userprov_queue_consumers"):
        assert wanted in used


def test_every_alert_queries_exported_metrics_and_has_a_runbook() -> None:
    runbook = (ROOT / "docs" / "how-to" / "runbook.md").read_text()
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)}
    for rule in alert_rules():
        assert named_in(rule["expr"]) <= exported(), rule["alert"]
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}
        page, anchor = rule["annotations"]["runbook_url"].split("#")
        assert page == "docs/how-to/runbook.md" and anchor in anchors, rule["alert"]
