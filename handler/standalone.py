"""Standalone instances: plan and replace. (Being written: issue 4.)"""

from __future__ import annotations


def plan_instances(ctx) -> tuple:
    return ()


def apply_instances(ctx, plans):
    from .engine import Outcome
    return Outcome()
