"""iolab's grader: `python -m grader LAB [--submission PATH] [--mode docker|local]`."""
