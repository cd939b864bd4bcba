"""The HTTP layer: dependencies, lists, responses, forms, errors, hardening, route docs."""
