"""Applications and their APNs, FCM and HMS credentials."""
