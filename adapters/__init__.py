"""Adapters: the ports implemented on real technology, each with an in-memory twin."""
