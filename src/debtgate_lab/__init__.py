"""The lab and test harness, outside the runtime package: network namespaces with a
gateway, subscribers and web hosts (:mod:`.netlab`), a throwaway PostgreSQL with the
reference schema (:mod:`.pglab`), and ``debtgate lab`` (:mod:`.lab`). The tests and the
benchmarks use it; nothing the daemon or the portal runs imports it (an import-linter
contract in pyproject.toml)."""
