"""The HTTP layer shared by every domain: envelopes, errors, authentication, limits."""
