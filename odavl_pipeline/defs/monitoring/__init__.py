"""Monitoring: run-failure alerts and the billing marts' freshness expectations."""
