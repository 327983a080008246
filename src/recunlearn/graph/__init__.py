"""Pure utilities on the user-item graph: edge sets (`edges`), the normalised adjacency and its propagation
(`adjacency`), and samplers of training pairs and non-edges (`sampling`). No files, no configuration."""
