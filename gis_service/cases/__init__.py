"""Case machinery shared by every kind of case (hazards, service orders, 吹哨 calls)."""
