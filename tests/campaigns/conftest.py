"""Campaign tests use the delivery tests' view of the server and the fake providers."""

from tests.delivery.conftest import push

__all__ = ["push"]
