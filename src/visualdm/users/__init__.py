"""Users: accounts, credentials and roles (the Authentication System's data)."""
