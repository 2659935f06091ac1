"""The event outbox: rows written in the transaction of the event they announce, read in commit order."""
