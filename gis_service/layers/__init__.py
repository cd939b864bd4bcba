"""Declarative layer catalog: facility types, hazard categories and departments from YAML."""
