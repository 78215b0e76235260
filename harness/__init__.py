"""What the tests and the benches share to drive real processes: a Prosody with the module and a
signature-checking receiver (`harness.prosody`), signed Prosody event streams
(`harness.eventstream`), the real clock and appointment windows a running server accepts
(`harness.clock`) and a service process's environment (`harness.env`).

It imports nothing from `tests` or `bench`, so a bench runs without the test suite, and it is
not part of the installed package (pyproject's setuptools `include` names only `service*`)."""
