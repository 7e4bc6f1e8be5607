"""``python -m provisioner`` runs the command line."""

from provisioner.cli import main

main(prog_name="provisioner")
