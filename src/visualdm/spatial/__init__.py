"""The spatial world: an RBush R-tree index of buildings and entities."""
