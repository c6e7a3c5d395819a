"""The vendors the relay delivers to: one module per kind (its destination config, payload
builders and client, behind a `VendorSpec`), registered in relay.vendors.registry.

Shared pieces: `spec` (the Destination base and VendorSpec), `client` (the client contract),
`answers` (vendor error texts), `http` (the HTTP transport, deliver functions only) and
`stripe_line_items` (QuickLizard's reads of Stripe Checkout lines).
"""
