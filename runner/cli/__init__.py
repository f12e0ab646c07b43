"""The `runner` command line: one module per subcommand, one error boundary in main."""
