"""Root pytest configuration: the harness fixtures for every test tier."""

pytest_plugins = ["harness.fixtures_services", "harness.fixtures_cluster", "harness.fixtures_node"]
