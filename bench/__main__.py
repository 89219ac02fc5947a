import sys

from wapa.bench.cli import main

sys.exit(main())
