"""Dagster definitions, one folder per domain; `odavl_pipeline.definitions` assembles them."""
