import sys

from wapa.cli import main

sys.exit(main())
