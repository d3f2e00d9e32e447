"""The trading domain: pure values, specifications, aggregates and events.

Nothing here performs I/O or reads a clock; time and identifiers are passed in.
"""
