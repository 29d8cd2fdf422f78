"""HTTP surface of Headrace: the Quart app factory, routes, middleware and CLI."""
