"""The paper exchange: MEXC's ports answered from a replay scenario, no real money."""
