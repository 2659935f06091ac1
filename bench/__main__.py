"""`make bench`: every benchmark, each printing ratios against a baseline measured in the same run."""

from bench import api_latency, computer, console, events, invocations, launch, lifecycle, live, proxy_overhead, tasks

launch.main([])
print()
lifecycle.main([])
print()
proxy_overhead.main([])
print()
events.main([])
print()
live.main([])
print()
invocations.main([])
print()
api_latency.main([])
print()
computer.main([])
print()
tasks.main([])
print()
console.main([])
