"""All I/O lives here, each concern behind a port (see evalhub.ports)."""
