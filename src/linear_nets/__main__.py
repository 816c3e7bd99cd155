"""`python -m linear_nets` runs the command-line tool."""

from linear_nets.cli import run

run()
