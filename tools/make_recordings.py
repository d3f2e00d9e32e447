"""Make the bundled backtest recordings (adapters/paper/recordings/*.json).

THE PATHS ARE SYNTHETIC. We hold no real MEXC captures; these files are generated from a fixed
seed so backtests have something shaped like new listings to run on: pump-and-dump, slow bleed,
steady climb, flat, spike then collapse, gap down at open, a moonshot and a chop. Each path is a
target curve (log-linear between a few key points drawn from the seed) plus mean-reverting
noise; sampled every 0.2 s for the first 5 s, then every second to 1 min, every 10 s to 10 min,
every minute after. All arithmetic is Decimal (uniform draws from random.Random go through their
repr), so the output is the same byte for byte on every machine and Python version.

    .venv/bin/python -m tools.make_recordings            # rewrite the bundled files
    .venv/bin/python -m tools.make_recordings --out DIR  # write elsewhere (tests compare the two)
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path

SEED = 20261125
BUNDLED = Path(__file__).resolve().parent.parent / "adapters" / "paper" / "recordings"
ONE = Decimal(1)


@dataclass(frozen=True)
class Listing:
    symbol: str
    shape: str
    launch_at: str
    minutes: int
    first_price: str
    quote_amount: str
    quantity_scale: int


CATALOGUE = (
    Listing("PUMPAUSDT", "pump_and_dump", "2026-11-02T10:00:00Z", 90, "0.0123", "50", 2),
    Listing("BLEEDUSDT", "slow_bleed", "2026-11-03T12:00:00Z", 120, "0.85", "50", 2),
    Listing("CLIMBUSDT", "steady_climb", "2026-11-05T09:00:00Z", 120, "0.0412", "50", 1),
    Listing("FLATUSDT", "flat", "2026-11-06T10:00:00Z", 60, "1.204", "25", 3),
    Listing("SPIKEUSDT", "spike_collapse", "2026-11-09T13:00:00Z", 75, "0.000482", "50", 0),
    Listing("GAPUSDT", "gap_down", "2026-11-10T10:00:00Z", 60, "0.31", "50", 2),
    Listing("MOONUSDT", "moonshot", "2026-11-12T11:00:00Z", 120, "0.0072", "100", 0),
    Listing("CHOPUSDT", "chop", "2026-11-13T10:00:00Z", 90, "2.15", "50", 3),
    Listing("PUMPBUSDT", "pump_and_dump", "2026-11-16T10:00:00Z", 60, "0.0931", "25", 1),
    Listing("DRIPUSDT", "slow_bleed", "2026-11-17T14:00:00Z", 90, "0.00218", "50", 0),
    Listing("RISEUSDT", "steady_climb", "2026-11-19T10:00:00Z", 45, "0.57", "50", 2),
    Listing("CALMUSDT", "flat", "2026-11-20T12:00:00Z", 30, "0.0455", "50", 1),
    Listing("FLASHUSDT", "spike_collapse", "2026-11-23T10:00:00Z", 60, "0.129", "100", 1),
    Listing("DROPUSDT", "gap_down", "2026-11-24T09:00:00Z", 40, "4.87", "50", 3),
    Listing("ROCKETUSDT", "moonshot", "2026-11-26T10:00:00Z", 100, "0.000091", "25", 0),
    Listing("SAWUSDT", "chop", "2026-11-27T16:00:00Z", 60, "0.0318", "50", 1),
)

DESCRIPTIONS = {
    "pump_and_dump": "pumps for a few minutes after open, then dumps below the open",
    "slow_bleed": "a small pop, then a long steady slide",
    "steady_climb": "climbs steadily for the whole recording",
    "flat": "hardly moves",
    "spike_collapse": "spikes in the first seconds, then collapses",
    "gap_down": "gaps down within the first second and never recovers the open",
    "moonshot": "runs to several times the open price",
    "chop": "swings up and down around the open",
}


def _u(rng: random.Random, low: str, high: str) -> Decimal:
    """A uniform draw in [low, high), as a Decimal (through the float's repr: exact and portable)."""
    lo, hi = Decimal(low), Decimal(high)
    return lo + (hi - lo) * Decimal(repr(rng.random()))


def _normal(rng: random.Random) -> Decimal:
    # Irwin-Hall: twelve uniforms minus six is close enough to a standard normal here.
    return sum((Decimal(repr(rng.random())) for _ in range(12)), Decimal(0)) - 6


def _key_points(shape: str, end: Decimal, rng: random.Random) -> tuple[list[tuple[Decimal, Decimal]], Decimal]:
    """(time seconds, price multiple of the open) key points and the noise scale per sqrt(second)."""
    z = Decimal(0)
    if shape == "pump_and_dump":
        peak_t = _u(rng, "60", "300")
        return [(z, ONE), (peak_t, _u(rng, "1.8", "3.2")), (peak_t * 3, _u(rng, "1.1", "1.5")),
                (end, _u(rng, "0.45", "0.85"))], Decimal("0.006")
    if shape == "slow_bleed":
        return [(z, ONE), (Decimal(30), _u(rng, "1.02", "1.07")), (end, _u(rng, "0.40", "0.70"))], Decimal("0.003")
    if shape == "steady_climb":
        return [(z, ONE), (end / 2, _u(rng, "1.25", "1.7")), (end, _u(rng, "1.7", "2.6"))], Decimal("0.003")
    if shape == "flat":
        return [(z, ONE), (end, _u(rng, "0.985", "1.015"))], Decimal("0.0008")
    if shape == "spike_collapse":
        spike_t = _u(rng, "2", "6")
        return [(z, ONE), (spike_t, _u(rng, "1.4", "1.9")), (_u(rng, "30", "60"), _u(rng, "0.85", "0.95")),
                (end, _u(rng, "0.2", "0.45"))], Decimal("0.005")
    if shape == "gap_down":
        dip = (_u(rng, "0.4", "0.9"), _u(rng, "0.70", "0.85"))
        return [(z, ONE), dip, (end, _u(rng, "0.6", "0.9"))], Decimal("0.003")
    if shape == "moonshot":
        return [(z, ONE), (Decimal(600), _u(rng, "2.0", "2.8")), (end * Decimal("0.6"), _u(rng, "5", "7")),
                (end, _u(rng, "4", "6"))], Decimal("0.005")
    if shape == "chop":
        return [(z, ONE), (end / 4, _u(rng, "1.1", "1.2")), (end / 2, _u(rng, "0.88", "0.95")),
                (end * 3 / 4, _u(rng, "1.08", "1.16")), (end, _u(rng, "0.93", "1.0"))], Decimal("0.004")
    raise ValueError(f"unknown shape {shape!r}")


def _times(end: Decimal) -> list[Decimal]:
    times: list[Decimal] = []
    for start, stop, step in (("0", "5", "0.2"), ("5", "60", "1"), ("60", "600", "10"), ("600", str(end), "60")):
        t, stop_d, step_d = Decimal(start), min(Decimal(stop), end), Decimal(step)
        while t < stop_d:
            times.append(t)
            t += step_d
    times.append(end)
    return times


def _target(points: list[tuple[Decimal, Decimal]], t: Decimal) -> Decimal:
    """Log-linear interpolation between key points."""
    for (t0, m0), (t1, m1) in itertools.pairwise(points):
        if t <= t1:
            w = (t - t0) / (t1 - t0)
            return (m0.ln() * (1 - w) + m1.ln() * w).exp()
    return points[-1][1]


def _significant(value: Decimal, digits: int = 6) -> Decimal:
    return value.quantize(Decimal(1).scaleb(value.adjusted() - digits + 1))


def make(listing: Listing, rng: random.Random) -> dict[str, object]:
    end = Decimal(listing.minutes * 60)
    keys, sigma = _key_points(listing.shape, end, rng)
    first = Decimal(listing.first_price)
    tau = Decimal(120)  # noise pulls back toward the target curve over about two minutes
    noise = Decimal(0)
    prices = []
    last_t = Decimal(0)
    for t in _times(end):
        if t > 0:
            dt = t - last_t
            noise = noise * (-dt / tau).exp() + sigma * dt.sqrt() * _normal(rng)
        last_t = t
        price = first if t == 0 else _significant(first * _target(keys, t) * noise.exp())
        prices.append({"t": format(t.normalize(), "f"), "price": format(price, "f")})
    return {
        "symbol": listing.symbol,
        "launch_at": listing.launch_at,
        "quote_amount": listing.quote_amount,
        "quantity_scale": listing.quantity_scale,
        "synthetic": True,
        "shape": listing.shape,
        "description": f"SYNTHETIC (tools/make_recordings.py, seed {SEED}): {DESCRIPTIONS[listing.shape]}",
        "prices": prices,
    }


def render(doc: dict[str, object]) -> str:
    head = {k: v for k, v in doc.items() if k != "prices"}
    lines = ["{"] + [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + ['  "prices": [']
    points = doc["prices"]
    if not isinstance(points, list):
        raise TypeError(f"a recording's prices are a list, got {type(points).__name__}")
    lines += [f"    {json.dumps(p)}{',' if i < len(points) - 1 else ''}" for i, p in enumerate(points)]
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    written = []
    with localcontext() as ctx:
        ctx.prec = 28
        for n, listing in enumerate(CATALOGUE, start=1):
            path = out / f"{n:02d}-{listing.symbol.removesuffix('USDT').lower()}.json"
            path.write_text(render(make(listing, rng)), encoding="utf-8")
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=BUNDLED, help="directory to write (default: the bundled one)")
    args = parser.parse_args()
    paths = write_all(args.out)
    print(f"wrote {len(paths)} synthetic recordings to {args.out}")


if __name__ == "__main__":
    main()
