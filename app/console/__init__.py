"""The web console: one page at `/` and its static assets under `/console/`, shipped in the package."""
