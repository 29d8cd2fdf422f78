"""Vector-store backends for knowledge bases, each implementing
`engine.knowledge.store.VectorStore`.

- `connectors.vector.pgvector.PgVectorStore`: PostgreSQL with pgvector.
- `connectors.vector.qdrant.QdrantStore`: Qdrant (server or qdrant-client local mode).

Filter semantics shared by every backend (enforced by `tests/knowledge`):

- Values are typed JSON scalars: a number never equals a string or a boolean
  (`1` != `"1"` != `true`); ints and floats compare as numbers (`2` == `2.0`).
- A field is *missing* when it is absent or JSON null. Every condition on a
  missing field is false, except `ne`, `notIn` and `notExists`, which are true.
  In general `ne`, `notIn` and `notExists` are the exact negations of `eq`,
  `in` and `exists`.
- `eq`, `gt`/`gte`/`lt`/`lte`, `startsWith`, `endsWith` and `in` look at scalar
  values only: on an array or object they are false (so `ne` is true).
  Use `contains` for arrays.
- `contains`: on a string field, a case-sensitive substring test; on an array
  field, membership (some element equals the string value).
- `gt`/`gte`/`lt`/`lte` with a number compare numbers; with a string compare
  strings byte-wise (code-point order), so ISO-8601 dates in one format sort
  correctly. Qdrant compares strings only as datetimes (see its module).
- `startsWith`/`endsWith` are case-sensitive and literal (no wildcards).
- `exists` is true when the field is present, not null and not an empty array.
- Dotted fields address nested objects; a path never descends into arrays
  (a condition on `a.b` where `a` is an array is false, as if missing).
"""
