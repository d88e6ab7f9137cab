"""The Stripe client, built from the settings (STRIPE_API_KEY, STRIPE_API_BASE)."""

import stripe

from odavl_pipeline.settings import Settings

HTTP_TIMEOUT_SECONDS = 30
NETWORK_RETRIES = 2  # stripe-python retries connection errors, 409 and 5xx with backoff


class StripeNotConfigured(RuntimeError):
    """STRIPE_API_KEY is unset: the Stripe steps are skipped."""

    def __init__(self) -> None:
        super().__init__(
            "STRIPE_API_KEY is not set, so the Stripe steps are skipped "
            "(set STRIPE_API_KEY, and STRIPE_API_BASE for a server other than Stripe's)"
        )


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """A client for Stripe's API, or for the server at STRIPE_API_BASE (an emulator in tests)."""
    if not settings.stripe_api_key:
        raise StripeNotConfigured()
    return stripe.StripeClient(
        settings.stripe_api_key.get_secret_value(),
        base_addresses=(
            {"api": settings.stripe_api_base.rstrip("/")} if settings.stripe_api_base else None
        ),
        http_client=stripe.RequestsClient(timeout=HTTP_TIMEOUT_SECONDS),
        max_network_retries=NETWORK_RETRIES,
    )
