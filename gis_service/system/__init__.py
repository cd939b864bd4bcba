"""System endpoints: health and service metadata."""
