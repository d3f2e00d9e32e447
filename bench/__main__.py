import sys

from bench import persistence
from bench.run import main

if sys.argv[1:2] == ["persistence"]:  # python -m bench persistence [--writers N ...]: that one only
    sys.exit(persistence.main(sys.argv[2:]))
code = main()  # the MEXC latency benchmark (its options: python -m bench --help)
if code:  # a round landed no order, or bad arguments
    sys.exit(code)
print()
sys.exit(persistence.main([]))
