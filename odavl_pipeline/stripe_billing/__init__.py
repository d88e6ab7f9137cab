"""Stripe, both ways: subscriptions in (sync and signed webhooks), metered usage out.

Plain functions over a `stripe.StripeClient` and a psycopg connection; no Dagster here.
"""
