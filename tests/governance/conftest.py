from tests.gateway.conftest import mock, upstream_keys  # noqa: F401
from tests.support.mock_upstream.fixtures import mock_upstream  # noqa: F401
