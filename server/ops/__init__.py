"""Operations: the `telekol` command, the supervisor, the web server, benchmarks."""
