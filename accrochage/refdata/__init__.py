"""Loaders of the official reference files: France compétences' RNCP/RS export, INSEE's COG."""
