import sys

from clarityx.cli import main

sys.exit(main())
