"""Partners (counter networks) and SSO's internal REST clients: register, list, disable, rotate."""
