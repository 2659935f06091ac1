"""The warm pool: browsers launched ahead, claimed by a matching create."""
