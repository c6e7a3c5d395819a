"""The local stack's signing secrets and tokens (documented in the README; never used in AWS)."""

from __future__ import annotations

LOCAL_STRIPE_SECRET = "whsec_local_conversion_relay"
LOCAL_HUBSPOT_SECRET = "local-hubspot-client-secret"
LOCAL_HUBSPOT_TOKEN = "pat-local-hubspot"  # the HubSpot API sandbox's private-app token
# HubSpot v3 signs the URL it calls, and the relay checks the URL as API Gateway reports it:
# https (x-forwarded-proto), the Host, the path. The samples' requests go to localhost:3000.
LOCAL_HUBSPOT_URL = "https://localhost:3000/webhooks/hubspot"
LOCAL_PIPEDRIVE_BASIC_AUTH = "relay:local-pipedrive-password"
LOCAL_PADDLE_SECRET = "pdl_ntfset_01local0conversion0relay_c2VjcmV0"
LOCAL_SHOPIFY_SECRET = "shpss_local_conversion_relay"
LOCAL_EVENTS_SECRET = "whsec_bG9jYWwgY29udmVyc2lvbiByZWxheSBldmVudHMhISE="
LOCAL_WEBHOOK_SECRETS = {
    "stripe": LOCAL_STRIPE_SECRET,
    "hubspot": LOCAL_HUBSPOT_SECRET,
    "pipedrive": LOCAL_PIPEDRIVE_BASIC_AUTH,
    "paddle": LOCAL_PADDLE_SECRET,
    "shopify": LOCAL_SHOPIFY_SECRET,
    "events": LOCAL_EVENTS_SECRET,
}
# The read keys `relay backfill` and ReconcileFunction use against the provider-API sandboxes.
LOCAL_READ_KEYS = {
    "stripe": "rk_test_local_conversion_relay",  # a restricted key with Events: Read
    "paddle": "pdl_sdbx_apikey_01local0conversion0relay",
    "shopify": "shpat_local_conversion_relay",
    "hubspot": LOCAL_HUBSPOT_TOKEN,  # the private app's token reads deals for both jobs
    "pipedrive": "local-pipedrive-api-token",
}
