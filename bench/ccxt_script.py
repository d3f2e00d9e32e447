"""The script a user would write with ccxt to snipe a listing, run as its own process:

    MEXC_API_KEY=... MEXC_SECRET_KEY=... python -m bench.ccxt_script BASE_URL SYMBOL OPENS_AT_MS

Markets loaded ahead, sleep until 2 ms before the announced open, then a market buy by cost in a
tight loop while MEXC refuses it as not open yet (10007, which ccxt raises as BadSymbol), rate
limiter off. The only lines a user pointing at the real MEXC would not write are the three that
aim it at the fake (its URLs, and no currency list: that endpoint needs a MEXC wallet and is read
before the sleep anyway). Prints one JSON line: orders sent and the accepted order's id.
"""

import json
import os
import sys
import time

import ccxt

EARLY = 0.002  # start sending this long before the open
GIVE_UP = 5.0  # seconds after the open


def main(base_url: str, symbol: str, opens_at_ms: int) -> int:
    exchange = ccxt.mexc({"apiKey": os.environ["MEXC_API_KEY"], "secret": os.environ["MEXC_SECRET_KEY"],
                          "enableRateLimit": False, "has": {"fetchCurrencies": False}})
    api = exchange.urls["api"]
    api["spot"]["public"] = api["spot"]["private"] = base_url  # ccxt appends /api/v3/<path>
    api["contract"]["public"] = base_url + "/api/v1/contract"
    exchange.load_markets()
    market = exchange.market(symbol)["symbol"]  # BN1USDT -> BN1/USDT
    opens_at = opens_at_ms / 1000
    time.sleep(max(0.0, opens_at - EARLY - time.time()))
    sent = 0
    while True:
        sent += 1
        try:
            order = exchange.create_order(market, "market", "buy", None, None, {"cost": 10})
            break
        except ccxt.BadSymbol:  # 10007 "symbol not support api": not open yet
            if time.time() > opens_at + GIVE_UP:
                raise
    print(json.dumps({"sent": sent, "order_id": order["id"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
