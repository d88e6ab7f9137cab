"""DuckDB marts built from the operational database (CONTRACT.md section 6)."""
