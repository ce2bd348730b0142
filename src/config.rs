//! Configuration: the TOML file, checked whole.
