import sys

from sophia_mcp.cli import main

sys.exit(main())
