"""Entrypoints: the `sniper` CLI (and later the HTTP app and the worker), wired by dishka."""
