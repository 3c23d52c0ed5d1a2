"""The person's own data: export (a ZIP built by a queue job), erasure, and retention (old data pseudonymised)."""
