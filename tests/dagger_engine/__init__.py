"""A Dagger session fake for tests: Dagger's schema as the installed SDK knows it (schema.py) and
an engine end that speaks the SDK's wire protocol and really runs containers' commands
(engine.py). The same tests against a real engine: `make dagger-e2e`."""
