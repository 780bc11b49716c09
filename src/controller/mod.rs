//! placeholder
pub mod codec;
pub mod record_bodies;
pub mod records;
pub mod uuid;
