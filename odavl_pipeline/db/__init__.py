"""Operational PostgreSQL: models, engine, migrations, seeds and bulk writers."""
