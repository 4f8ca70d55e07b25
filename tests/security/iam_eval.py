"""An offline evaluation of IAM policy documents, for the security tests: which of a
principal's calls a set of identity policies (or an SCP) allows or denies.

It implements the part of IAM's evaluation logic the project's policies use: an explicit
Deny wins, then an Allow, else the implicit deny; actions and resources with ``*``/``?``
wildcards; the condition operators ``StringEquals``, ``StringEqualsIgnoreCase``,
``StringNotEquals``, ``StringLike``, ``ArnEquals``, ``ArnNotEquals``, ``Bool``, ``Null`` and
the ``ForAllValues:``/``ForAnyValue:`` set forms and the ``...IfExists`` suffix. A key
absent from the request matches nothing, except under a negated operator (true, as IAM
does), ``Null``, ``ForAllValues:`` (true: no value fails) and ``...IfExists`` (true).
An operator it does not know fails the evaluation rather than guess.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOW, DENY, IMPLICIT = "allow", "deny", "implicit deny"


@dataclass(frozen=True)
class Call:
    """One request: the action, the resource ARN, the request context's keys."""

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _like(pattern: str, value: str, case: bool = True) -> bool:
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _matches(base: str, wanted: str, value: str) -> bool:
    if base in ("StringEquals", "ArnEquals"):
        return value == wanted
    if base == "StringEqualsIgnoreCase":
        return value.lower() == wanted.lower()
    if base in ("StringLike", "ArnLike"):
        return _like(wanted, value)
    if base == "Bool":
        return value.lower() == wanted.lower()
    raise ValueError(f"operator {base} is not evaluated here")


NEGATED = {"StringNotEquals": "StringEquals", "ArnNotEquals": "ArnEquals",
           "StringNotLike": "StringLike", "ArnNotLike": "ArnLike"}


def _condition(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    present = key in context
    values = _listed(context[key]) if present else []
    patterns = _listed(wanted)
    if operator == "Null":
        return (not present) == (str(wanted).lower() == "true")
    qualifier, _, base = operator.rpartition(":")
    if base.endswith("IfExists"):
        if not present:
            return True
        base = base[:-len("IfExists")]
    negated = base in NEGATED
    positive = NEGATED.get(base, base)

    def hit(value: str) -> bool:
        found = any(_matches(positive, p, value) for p in patterns)
        return not found if negated else found

    if qualifier == "ForAllValues":
        return all(hit(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(hit(v) for v in values)
    if qualifier:
        raise ValueError(f"operator {operator} is not evaluated here")
    if not present:
        return negated
    return hit(values[0])


def _applies(statement: Mapping[str, Any], call: Call) -> bool:
    if not any(_like(a, call.action, case=False) for a in _listed(statement["Action"])):
        return False
    if not any(_like(r, call.resource) for r in _listed(statement["Resource"])):
        return False
    return all(_condition(op, key, wanted, call.context)
               for op, keys in statement.get("Condition", {}).items()
               for key, wanted in keys.items())


def evaluate(documents: Sequence[Mapping[str, Any]], call: Call) -> str:
    """``allow``, ``deny`` (an explicit Deny applies) or ``implicit deny``."""
    statements = [s for d in documents for s in d["Statement"] if _applies(s, call)]
    if any(s["Effect"] == "Deny" for s in statements):
        return DENY
    return ALLOW if statements else IMPLICIT
