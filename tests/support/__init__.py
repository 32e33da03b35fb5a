"""What tests share: the table simulator, the fake switch, OpenFlow message builders,
the fuzzer and the app-test helpers. Test modules import from here, never from one
another (tests/unit/test_test_imports.py checks it)."""
