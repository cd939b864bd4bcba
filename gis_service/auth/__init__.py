"""Accounts, roles scoped to grid subtrees, sessions, bearer tokens, API keys and audit."""
