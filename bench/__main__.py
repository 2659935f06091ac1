"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same run."""

from bench import events, launch_time, proxy_overhead

launch_time.main([])
print()
proxy_overhead.main([])
print()
events.main([])
