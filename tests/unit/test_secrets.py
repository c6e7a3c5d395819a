"""relay.secrets: the accepted forms of a stored secret value, parsed strictly and failing closed.

Tests read Given / When / Then in their comments or names.
"""

from __future__ import annotations

import pytest
from relay.errors import MalformedSecretError
from relay.secrets import resolve, split_values

NAME = "conversion-relay/stripe-webhook-secret"


@pytest.mark.parametrize(
    ("stored", "values"),
    [
        ("whsec_one", ["whsec_one"]),
        ("  whsec_one\n", ["whsec_one"]),
        ("whsec_new\nwhsec_old\n\n", ["whsec_new", "whsec_old"]),
        ('["whsec_new", "whsec_old"]', ["whsec_new", "whsec_old"]),
        ('{"secrets": ["whsec_new", " whsec_old "]}', ["whsec_new", "whsec_old"]),
        ('{"secret": "whsec_one"}', ["whsec_one"]),
        ('{"api_key": "sk_live_1"}', ["sk_live_1"]),
        # Commas are part of a value: a Pipedrive password may hold one
        ("relay:pa,ss", ["relay:pa,ss"]),
        ("relay:pa,ss\nrelay:new,pass", ["relay:pa,ss", "relay:new,pass"]),
    ],
)
def test_the_accepted_forms(stored: str, values: list[str]):
    assert split_values(stored, name=NAME) == values


@pytest.mark.parametrize(
    ("stored", "problem"),
    [
        ("", "is empty"),
        ("  \n \n", "is empty"),
        ('{"secrets": null}', "secrets must be a non-empty JSON list of strings"),
        ('{"secrets": []}', "secrets must be a non-empty JSON list of strings"),
        ('{"secrets": "whsec_x"}', "secrets must be a non-empty JSON list of strings"),
        ('[null, "whsec_x"]', r"the list\[0\] is not a non-empty string"),
        ('["whsec_x", 12]', r"the list\[1\] is not a non-empty string"),
        ('["whsec_x", "  "]', r"the list\[1\] is not a non-empty string"),
        ("[]", "the list must be a non-empty JSON list of strings"),
        ('{"secret": null}', "secret is not a non-empty string"),
        ('{"secret": ""}', "secret is not a non-empty string"),
        ('{"secret": "a", "secrets": ["b"]}', "exactly one member"),
        ('{"password": "whsec_x"}', "exactly one member"),
        ("{}", "exactly one member"),
        ('{"secret": "whsec_x"', "not valid JSON"),
        ("[whsec_x]", "not valid JSON"),
    ],
)
def test_anything_else_is_refused_naming_the_secret_and_the_problem_never_the_value(stored: str, problem):
    with pytest.raises(MalformedSecretError, match=problem) as error:
        split_values(stored, name=NAME)
    assert error.value.secret_name == NAME
    assert str(error.value).startswith(f"secret {NAME!r} is malformed: ")
    assert "whsec_x" not in str(error.value)
    # And no exception it came from carries the value either (the traceback is logged)
    assert error.value.__cause__ is None
    assert error.value.__context__ is None or error.value.__suppress_context__


def test_inline_values_of_local_runs_are_parsed_alike():
    assert resolve(name=None, inline='["whsec_a", "whsec_b"]') == ["whsec_a", "whsec_b"]
    with pytest.raises(MalformedSecretError, match="inline"):
        resolve(name=None, inline="[null]")
