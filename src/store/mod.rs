//! The SQLite store: one database per institution.
