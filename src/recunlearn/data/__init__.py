"""Raw datasets: where they come from (registry), how they reach the machine (acquire), how they are read (parsers)."""
