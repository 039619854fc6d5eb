"""PowerAuth Server: activation status and end-to-end encryption of messages."""
