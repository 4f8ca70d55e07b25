"""ami-upgrade's Lambda package: a thin entrypoint (``main``) over a pure engine."""
