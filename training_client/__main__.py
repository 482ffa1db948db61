import sys

from training_client.cli import main

sys.exit(main())
