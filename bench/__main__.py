import sys

if sys.argv[1:2] == ["exits"]:  # python -m bench exits [--samples N --hogs N]: tick -> exit order, that one only
    from bench import exits  # needs no ccxt

    sys.exit(exits.main(sys.argv[2:]))

from bench import persistence  # noqa: E402
from bench.run import main  # noqa: E402

if sys.argv[1:2] == ["persistence"]:  # python -m bench persistence [--writers N ...]: that one only
    sys.exit(persistence.main(sys.argv[2:]))
if sys.argv[1:2] == ["many"]:  # python -m bench many [--traders 50 ...]: many traders on one launch
    from bench import many

    sys.exit(many.main(sys.argv[2:]))
code = main()  # the MEXC latency benchmark (its options: python -m bench --help)
if code:  # a round landed no order, or bad arguments
    sys.exit(code)
print()
sys.exit(persistence.main([]))
