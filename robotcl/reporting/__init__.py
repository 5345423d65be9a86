"""Layer 4: reading and formatting. Tables and figures from the files that runs, grids and gaps
leave (results.json, grid.json, gap.json); no command module is imported here."""
