"""Reports written to files: the backtest equity chart."""
