//! The envelope: a manifest written beside every payload, last, that makes the
//! file self-describing, complete and authenticated.
