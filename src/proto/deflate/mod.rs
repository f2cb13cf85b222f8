//! permessage-deflate (RFC 7692): negotiation (always available) and, with the `deflate`
//! feature, the compression of messages with zlib-rs.

#[cfg(feature = "deflate")]
pub(crate) mod codec;
mod params;

#[cfg(feature = "deflate")]
pub use codec::{Deflater, Inflater};
pub use params::{
    DeflateOptions, DeflateParams, Extension, InvalidExtension, PERMESSAGE_DEFLATE, WINDOW_BITS,
    parse_extensions,
};
