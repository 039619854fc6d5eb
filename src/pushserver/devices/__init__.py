"""Device registrations: one row per push token of an app installation and activation."""
