"""Evaluation beside ``benchmarks/``: toy-world measurements, contact sheets and the shared real
clips (docs/architecture.md)."""
