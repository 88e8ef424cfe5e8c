"""Shared pytest configuration for troupe's own tests."""

pytest_plugins = ["pytester"]
