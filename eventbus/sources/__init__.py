"""Embedded event sources and the typed events they emit, one module per source."""
