"""Tests of the Redis Cluster bootstrap and health: pure parts and real servers."""
