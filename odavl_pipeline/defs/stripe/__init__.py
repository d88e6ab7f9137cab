"""Stripe assets: subscriptions in, metered usage out, and their reconciliation."""
