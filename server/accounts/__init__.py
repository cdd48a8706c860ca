"""Accounts: users' login and API tokens, device credentials, administration."""
