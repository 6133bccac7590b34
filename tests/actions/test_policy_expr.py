"""Azure Policy template expressions as a Modify plan evaluates them (remediator.actions.policy_expr)."""

from __future__ import annotations

from typing import Any

import pytest

from remediator.actions.policy_expr import Context, ExpressionError, evaluate, is_expression

FIELDS = {"tags['env']": "prod", "Microsoft.Storage/storageAccounts/minimumTlsVersion": "TLS1_0"}
CTX = Context(parameters={"effect": "Modify", "tagName": "owner", "tagValue": "data-team", "count": 3,
                          "zones": ["1", "2"]},
              field=FIELDS.get, api_version="2023-05-01")


@pytest.mark.parametrize(("text", "value"), [
    ("[parameters('effect')]", "Modify"),
    ("[parameters('EFFECT')]", "Modify"),  # parameter names are case-insensitive
    ("[concat('tags[', parameters('tagName'), ']')]", "tags[owner]"),
    ("[greaterOrEquals(requestContext().apiVersion, '2021-04-01')]", True),
    ("[greater(requestContext().apiVersion, '2023-05-01')]", False),
    ("[less(requestContext().apiVersion, '2019-04-01')]", False),
    ("[equals(field('tags[''env'']'), 'PROD')]", True),  # '' is a quote; strings compare case-insensitively
    ("[field('Microsoft.Storage/storageAccounts/minimumTlsVersion')]", "TLS1_0"),
    ("[and(true, not(false), or(false, true))]", True),
    ("[if(equals(parameters('count'), 3), 'three', 'other')]", "three"),
    ("[parameters('zones')[1]]", "2"),
    ("[length(parameters('zones'))]", 2),
    ("[contains(parameters('zones'), '2')]", True),
    ("[empty('')]", True),
    ("[toLower('TLS1_2')]", "tls1_2"),
    ("[string(true)]", "true"),
    ("[[literal brackets]", "[literal brackets]"),
    ("plain", "plain"),
    (True, True),
])
def test_expressions_evaluate_as_policy_does(text: Any, value: Any) -> None:
    assert evaluate(text, CTX) == value


def test_objects_and_arrays_are_evaluated_inside() -> None:
    assert evaluate({"a": ["[parameters('tagValue')]", 1]}, CTX) == {"a": ["data-team", 1]}
    assert is_expression("[x()]")
    assert not is_expression("[[x()]")


@pytest.mark.parametrize(("text", "reason"), [
    ("[utcNow()]", r"function utcNow\(\) is not one remediator evaluates"),
    ("[resourceGroup().location]", r"function resourceGroup\(\) is not one"),
    ("[parameters('nope')]", r"parameter 'nope' has no value"),
    ("[concat('a', ]", r"cannot read expression"),
    ("[less(1, 'a')]", r"less compares two strings or two integers"),
    ("[equals('a')]", r"equals takes 2 arguments, got 1"),
    ("[parameters('zones')[5]]", r"cannot take 5 of list"),
    ("[requestContext().location]", r"no property 'location'"),
])
def test_what_cannot_be_evaluated_is_an_error_naming_it(text: str, reason: str) -> None:
    with pytest.raises(ExpressionError, match=reason) as err:
        evaluate(text, CTX)
    assert "\n" not in str(err.value)
