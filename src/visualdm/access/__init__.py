"""Who may do what: principals (users with roles, system modules) and the authorization check."""
