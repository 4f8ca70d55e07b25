"""Pulumi components of ami-upgrade.

Deliberately empty: ``components.event_pattern`` and ``components.stack_settings`` are
pure Python and are imported by the sandbox and tests without Pulumi; import the
component modules (``components.workflow`` ...) explicitly where Pulumi is wanted.
"""
