//! `ReduceValue`: the types a `reduce` UDF may fold, and their byte encodings.

use crate::UdfError;

/// A type a `reduce` function takes and returns. Numbers are 8 bytes little-endian, the encoding
/// the host's native built-ins (sum, min, max, count) use, so wasm and native stages mix.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a value of a #[reduce] function",
    note = "use i64, u64, f64, String or Vec<u8>, or implement sluice_guest::ReduceValue for your type"
)]
pub trait ReduceValue: Sized {
    /// Decodes a value from its bytes.
    fn decode(bytes: &[u8]) -> Result<Self, UdfError>;
    /// Appends the value's bytes.
    fn encode(&self, out: &mut Vec<u8>);
}

macro_rules! number {
    ($t:ty, $name:literal) => {
        impl ReduceValue for $t {
            #[inline]
            fn decode(bytes: &[u8]) -> Result<Self, UdfError> {
                match <[u8; 8]>::try_from(bytes) {
                    Ok(a) => Ok(<$t>::from_le_bytes(a)),
                    Err(_) => Err(UdfError::new(format!(
                        concat!(
                            "value is not an ",
                            $name,
                            " (8 bytes, little-endian): it has {} bytes"
                        ),
                        bytes.len()
                    ))),
                }
            }
            #[inline]
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
        }
    };
}

number!(i64, "i64");
number!(u64, "u64");
number!(f64, "f64");

impl ReduceValue for Vec<u8> {
    fn decode(bytes: &[u8]) -> Result<Self, UdfError> {
        Ok(bytes.to_vec())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl ReduceValue for String {
    fn decode(bytes: &[u8]) -> Result<Self, UdfError> {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip_and_wrong_widths_are_errors() {
        let mut out = Vec::new();
        (-42i64).encode(&mut out);
        assert_eq!(i64::decode(&out).unwrap(), -42);
        let e = i64::decode(b"abc").unwrap_err();
        assert!(e.message().contains("3 bytes"), "{e}");
        assert!(String::decode(&[0xff]).is_err());
    }
}
