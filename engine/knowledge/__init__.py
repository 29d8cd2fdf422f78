"""Knowledge bases: vector stores behind one interface, metadata filters,
ingestion (parse -> chunk -> embed -> store) and search."""
