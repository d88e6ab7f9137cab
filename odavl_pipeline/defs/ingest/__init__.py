"""Ingestion assets: the landing zone into the operational PostgreSQL."""
