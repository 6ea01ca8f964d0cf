"""v1 -> v2 conversion: recipes for components, bindings for calls, and a report of every decision."""
