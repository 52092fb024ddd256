"""The benchmarks (bench/<name>/run.py): a package so that they can share bench/common.py."""
