import sys

from logicforge.cli import main

sys.exit(main())
