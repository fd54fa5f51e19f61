"""Command-line entry points; each module has `register(subparsers)`."""
