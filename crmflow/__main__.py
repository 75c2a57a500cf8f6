"""`python -m crmflow` is the `crmflow` command."""

from crmflow.cli import main

main()
