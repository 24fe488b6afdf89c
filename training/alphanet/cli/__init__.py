"""Subcommands of ``python3 -m alphanet``: one module per command (``add_parser`` + ``run``)."""
