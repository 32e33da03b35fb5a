"""Pure flow logic: intent in, flow specs (plain values) out. Standard library only."""
