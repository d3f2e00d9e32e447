"""Use cases that orchestrate the domain through ports (typing.Protocol)."""
