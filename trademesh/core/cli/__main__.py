import sys

from trademesh.core.cli import main

sys.exit(main())
