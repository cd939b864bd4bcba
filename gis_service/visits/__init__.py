"""Visits (走访) to people under care: who visited whom, when and where, what was found
(text, photos, the tick list of needs), and the hazard or service need raised on the spot."""
