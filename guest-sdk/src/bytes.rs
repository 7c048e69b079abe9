//! `Bytes`: a key or value that borrows from the batch when it can, so the common map (pick a
//! field, re-key a record) allocates nothing.

use std::borrow::Cow;
use std::fmt;
use std::ops::Deref;

const INLINE: usize = 22;

/// Bytes of a key or value: borrowed from the input batch, owned, or small and inline.
#[derive(Clone)]
pub enum Bytes<'a> {
    /// A slice of the input batch (no copy).
    Borrowed(&'a [u8]),
    /// Bytes the UDF made.
    Owned(Vec<u8>),
    /// Up to 22 bytes stored inline (numbers, short strings): no allocation.
    #[doc(hidden)]
    Inline { len: u8, buf: [u8; INLINE] },
}

impl<'a> Bytes<'a> {
    /// The bytes.
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Bytes::Borrowed(b) => b,
            Bytes::Owned(v) => v,
            Bytes::Inline { len, buf } => &buf[..*len as usize],
        }
    }

    /// The bytes with the batch's lifetime, if they are a slice of the input batch.
    #[inline]
    pub fn batch_bytes(&self) -> Option<&'a [u8]> {
        match self {
            Bytes::Borrowed(b) => Some(b),
            _ => None,
        }
    }

    /// Copies `b` inline when it is short, else onto the heap.
    #[inline]
    pub fn copy_from(b: &[u8]) -> Bytes<'static> {
        if b.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..b.len()].copy_from_slice(b);
            Bytes::Inline {
                len: b.len() as u8,
                buf,
            }
        } else {
            Bytes::Owned(b.to_vec())
        }
    }

    /// The bytes as UTF-8 text, if they are.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(self.as_bytes()).ok()
    }

    /// An owned copy that no longer borrows the batch.
    pub fn into_owned(self) -> Bytes<'static> {
        match self {
            Bytes::Borrowed(b) => Bytes::copy_from(b),
            Bytes::Owned(v) => Bytes::Owned(v),
            Bytes::Inline { len, buf } => Bytes::Inline { len, buf },
        }
    }
}

impl Deref for Bytes<'_> {
    type Target = [u8];
    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl PartialEq for Bytes<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for Bytes<'_> {}

impl fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_str() {
            Some(s) => write!(f, "{s:?}"),
            None => write!(f, "{:?}", self.as_bytes()),
        }
    }
}

impl<'a> From<&'a [u8]> for Bytes<'a> {
    #[inline]
    fn from(b: &'a [u8]) -> Self {
        Bytes::Borrowed(b)
    }
}

impl<'a, const N: usize> From<&'a [u8; N]> for Bytes<'a> {
    #[inline]
    fn from(b: &'a [u8; N]) -> Self {
        Bytes::Borrowed(b)
    }
}

impl<'a> From<&'a str> for Bytes<'a> {
    #[inline]
    fn from(s: &'a str) -> Self {
        Bytes::Borrowed(s.as_bytes())
    }
}

impl From<Vec<u8>> for Bytes<'_> {
    #[inline]
    fn from(v: Vec<u8>) -> Self {
        Bytes::Owned(v)
    }
}

impl From<String> for Bytes<'_> {
    #[inline]
    fn from(s: String) -> Self {
        Bytes::Owned(s.into_bytes())
    }
}

impl<'a> From<Cow<'a, [u8]>> for Bytes<'a> {
    fn from(c: Cow<'a, [u8]>) -> Self {
        match c {
            Cow::Borrowed(b) => Bytes::Borrowed(b),
            Cow::Owned(v) => Bytes::Owned(v),
        }
    }
}

/// A number as a value: 8 bytes, little-endian (the encoding the native built-ins read).
impl From<i64> for Bytes<'_> {
    #[inline]
    fn from(n: i64) -> Self {
        Bytes::copy_from(&n.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_copies_stay_inline_and_long_ones_go_to_the_heap() {
        assert!(matches!(Bytes::copy_from(&[1; 22]), Bytes::Inline { len: 22, .. }));
        assert!(matches!(Bytes::copy_from(&[1; 23]), Bytes::Owned(_)));
        assert_eq!(Bytes::from(7i64).as_bytes(), &7i64.to_le_bytes());
        assert_eq!(Bytes::from("ab"), Bytes::from(b"ab".to_vec()));
    }
}
