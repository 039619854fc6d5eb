"""Delivery to APNs, FCM and HMS: payloads, transport, senders, outcomes, and the worker."""
