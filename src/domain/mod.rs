//! The domain layer: the business rules of both roles, over the store.
