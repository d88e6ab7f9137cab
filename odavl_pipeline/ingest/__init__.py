"""Ingestion: landing files to PostgreSQL in bulk, every line accounted for."""
