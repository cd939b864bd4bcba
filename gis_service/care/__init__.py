"""People under care (六必清 / 七必访): households and people of a grid with their categories,
next-due visit dates, visit coverage per grid, and the import of a community's ledger.
Personal data: only staff whose scope covers a household read it, and every read is audited."""
