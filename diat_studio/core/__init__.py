"""Everything that is not Qt: image I/O, faces, alignment, masks, models, inference, pipeline, batch.

This package must never import Qt or torch (enforced by tests/core/test_import_contract.py and by
the import-linter contract in pyproject.toml).
"""
