"""One module per workload; each has run(bench), which adds its rows to bench.res."""
