"""ODAVL Studio data pipeline."""
