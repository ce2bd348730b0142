//! stxd: the Fichier SecuTix inter-institution interface.

pub mod app;
pub mod cli;
pub mod config;
pub mod domain;
pub mod format;
pub mod ident;
pub mod inbound;
pub mod money;
pub mod outbound;
pub mod store;
pub mod transport;
