"""The yardstick of the speed history: a fixed single-threaded matmul loop. ``ptbench nightly
--benchmarks FILE`` divides every benchmark of FILE by this one's median, measured in the same
pytest session, so a night on a slower (or busier) machine is not read as a slower ptbench."""

from ptbench.nightly.speed import reference_seconds


def test_reference_loop(benchmark):
    seconds = benchmark.pedantic(lambda: reference_seconds(repeats=1), rounds=7, iterations=1)
    assert seconds > 0
