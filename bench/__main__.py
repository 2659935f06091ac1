"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same run."""

from bench import launch_time, proxy_overhead

launch_time.main([])
print()
proxy_overhead.main([])
