"""Fraud rules: each rule table-driven, the combination of actions and shadow mode, and the
disposable-domain lookup."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.attribution.fraud import (
    RULES,
    SignupFacts,
    deciding_rule,
    evaluate,
    is_disposable,
    outcome,
)
from shared.contracts.sections.fraud import FraudPolicy, Rule

BASE = SignupFacts(customer_id="cust-1", referrer_external_user_id="ref-1")


def _facts(**changes: Any) -> SignupFacts:
    return replace(BASE, **changes)


# (rule, facts, fires?)
CASES = [
    ("self_referral", _facts(), False),
    ("self_referral", _facts(customer_id="ref-1"), True),
    ("self_referral", _facts(email_hash="e1", referrer_email_hash="e1"), True),
    ("self_referral", _facts(email_hash="e1", referrer_email_hash="e2"), False),
    ("self_referral", _facts(email_hash=None, referrer_email_hash=None), False),
    ("self_referral", _facts(referrer_external_user_id=None, customer_id="x"), False),
    ("disposable_email", _facts(email_domain="mailinator.com"), True),
    ("disposable_email", _facts(email_domain="eu.mailinator.com"), True),
    ("disposable_email", _facts(email_domain="gmail.com"), False),
    ("disposable_email", _facts(email_domain=None), False),
    ("same_ip_or_device", _facts(ip_hash="i1", referrer_ip_hashes=frozenset({"i1"})), True),
    ("same_ip_or_device", _facts(ip_hash="i1", referrer_ip_hashes=frozenset({"i2"})), False),
    ("same_ip_or_device", _facts(device_hash="d", referrer_device_hashes=frozenset({"d"})), True),
    ("same_ip_or_device", _facts(device_hash=None, referrer_device_hashes=frozenset({"d"})),
     False),
    ("same_ip_or_device", _facts(ip_hash=None), False),
    ("velocity", _facts(referrer_signups_last_hour=99), False),
    ("velocity", _facts(referrer_signups_last_hour=100), True),
    ("velocity", _facts(referrer_signups_last_day=499), False),
    ("velocity", _facts(referrer_signups_last_day=500), True),
    ("velocity", _facts(ip_hash="i", ip_signups_last_day=19), False),
    ("velocity", _facts(ip_hash="i", ip_signups_last_day=20), True),
    ("velocity", _facts(ip_hash=None, ip_signups_last_day=500), False),
    ("bot_click", _facts(click_attributable=False), True),
    ("bot_click", _facts(click_attributable=True), False),
    ("bot_click", _facts(click_attributable=None), False),
    ("too_fast", _facts(seconds_since_click=2.9), True),
    ("too_fast", _facts(seconds_since_click=3.0), False),
    ("too_fast", _facts(seconds_since_click=None), False),
]  # fmt: skip


@pytest.mark.parametrize(("rule", "facts", "fires"), CASES)
def test_each_rule(rule: str, facts: SignupFacts, fires: bool) -> None:
    policy = FraudPolicy()
    hit = RULES[rule](facts, getattr(policy, rule))
    assert (hit is not None) is fires
    fired = {f.rule for f in evaluate(policy, facts)}
    assert (rule in fired) is fires


def test_limits_are_configurable_and_can_be_switched_off() -> None:
    facts = _facts(referrer_signups_last_hour=5, ip_hash="i", ip_signups_last_day=5)
    strict = FraudPolicy(velocity={"per_referrer_hour": 5})
    off = FraudPolicy(
        velocity={"per_referrer_hour": None, "per_referrer_day": None, "per_ip_day": None}
    )
    assert [f.rule for f in evaluate(strict, facts)] == ["velocity"]
    assert evaluate(off, _facts(referrer_signups_last_hour=10**6)) == []
    slow = FraudPolicy(too_fast={"min_seconds": 60})
    assert [f.rule for f in evaluate(slow, _facts(seconds_since_click=59))] == ["too_fast"]


def test_inputs_hold_hashes_not_clear_text() -> None:
    facts = _facts(customer_id="ref-1", email_hash="h-email", ip_hash="h-ip")
    [fired] = evaluate(FraudPolicy(), facts)
    assert fired.inputs["email_hash"] == "h-email"
    assert "ref-1" not in str(fired.inputs)


@pytest.mark.parametrize(
    ("actions", "expected"),
    [
        ([], "allow"),
        ([("allow", False)], "allow"),
        ([("flag", False)], "flag"),
        ([("reject", False)], "reject"),
        ([("flag", False), ("reject", False)], "reject"),
        ([("reject", True)], "allow"),
        ([("reject", True), ("flag", False)], "flag"),
        ([("allow", False), ("flag", True)], "allow"),
    ],
)
def test_outcome_is_the_strictest_enforced_action(
    actions: list[tuple[str, bool]], expected: str
) -> None:
    facts = _facts(customer_id="ref-1", email_domain="mailinator.com", click_attributable=False)
    names = ["self_referral", "disposable_email", "bot_click"]
    config = {name: Rule(action=a, shadow=s) for name, (a, s) in zip(names, actions, strict=False)}
    # Rules not configured in the table are set to allow, so only the table decides.
    for name in names[len(actions) :]:
        config[name] = Rule(action="allow")
    fired = evaluate(FraudPolicy(**config), facts)
    assert outcome(fired) == expected
    assert {f.rule for f in fired} == set(names)


@given(st.lists(st.tuples(st.sampled_from(["allow", "flag", "reject"]), st.booleans()), max_size=6))
def test_shadow_rules_never_change_the_outcome(rules: list[tuple[str, bool]]) -> None:
    names = list(RULES)
    facts = _facts(
        customer_id="ref-1", email_domain="mailinator.com", ip_hash="i",
        referrer_ip_hashes=frozenset({"i"}), referrer_signups_last_hour=10**6,
        click_attributable=False, seconds_since_click=0.0,
    )  # fmt: skip
    config = {name: {"action": "allow"} for name in names}
    for name, (action, shadow) in zip(names, rules, strict=False):
        config[name] = {"action": action, "shadow": shadow}
    with_shadow = outcome(evaluate(FraudPolicy.model_validate(config), facts))
    enforced_only = {
        n: (c if not c.get("shadow") else {"action": "allow"}) for n, c in config.items()
    }
    assert with_shadow == outcome(evaluate(FraudPolicy.model_validate(enforced_only), facts))


@given(st.lists(st.tuples(st.sampled_from(["allow", "flag", "reject"]), st.booleans()), max_size=6))
def test_the_deciding_rule_is_an_enforced_rule_with_the_outcome(
    rules: list[tuple[str, bool]],
) -> None:
    facts = _facts(
        customer_id="ref-1", email_domain="mailinator.com", ip_hash="i",
        referrer_ip_hashes=frozenset({"i"}), referrer_signups_last_hour=10**6,
        click_attributable=False, seconds_since_click=0.0,
    )  # fmt: skip
    config = {name: {"action": "allow"} for name in RULES}
    for name, (action, shadow) in zip(RULES, rules, strict=False):
        config[name] = {"action": action, "shadow": shadow}
    fired = evaluate(FraudPolicy.model_validate(config), facts)
    decided = outcome(fired)
    rule = deciding_rule(fired)
    if decided == "allow":
        assert rule is None
    else:
        [first] = [f for f in fired if f.rule == rule]
        assert first.enforced and first.action == decided
        # The first such rule in the stable order of evaluation.
        assert rule == next(f.rule for f in fired if f.enforced and f.action == decided)


def test_defaults() -> None:
    policy = FraudPolicy()
    assert (policy.self_referral.action, policy.bot_click.action) == ("reject", "reject")
    assert policy.disposable_email.action == policy.same_ip_or_device.action == "flag"
    assert policy.too_fast.shadow is True and policy.velocity.shadow is False


@pytest.mark.parametrize(
    ("domain", "disposable"),
    [("mailinator.com", True), ("MAILINATOR.COM", True), ("x.yopmail.com", True),
     ("gmail.com", False), ("example.com", False), ("com", False)],
)  # fmt: skip
def test_is_disposable(domain: str, disposable: bool) -> None:
    assert is_disposable(domain) is disposable
