"""The command line: parses arguments, calls evalhub.app, renders. The only place that prints."""
