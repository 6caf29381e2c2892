import sys

from scripts.evaluate.run import main

sys.exit(main(sys.argv[1:]))
