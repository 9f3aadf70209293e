"""Slow, plain reference implementations that the tests check the pack against and the benchmarks
time it against: the dense 2L-token branch forward, the plate matte's first filters."""
