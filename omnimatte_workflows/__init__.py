"""The builder of the ready-made workflows in ``workflows/`` (and their API copies), their format
helpers and their pictures (docs/architecture.md)."""
