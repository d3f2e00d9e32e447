"""Entrypoints: the `sniper` CLI, the HTTP app and the worker, wired by dishka."""
