"""Campaigns: one message to many users, each of their devices reached once."""
