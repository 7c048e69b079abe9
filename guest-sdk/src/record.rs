//! `Record`: what a map, flat_map or filter sees and returns.

use crate::{Bytes, UdfError};

/// A record: an optional key, a value and a timestamp (milliseconds since the Unix epoch; event
/// time when the source knows it, else arrival time).
///
/// Records a UDF receives borrow their bytes from the batch; return them as they are, re-keyed,
/// or with new bytes: nothing is copied until the host reads the output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The key, if any.
    pub key: Option<Bytes<'a>>,
    /// The value.
    pub value: Bytes<'a>,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
}

impl<'a> Record<'a> {
    /// A record with this value, no key and timestamp 0.
    #[inline]
    pub fn new(value: impl Into<Bytes<'a>>) -> Record<'a> {
        Record {
            key: None,
            value: value.into(),
            timestamp_ms: 0,
        }
    }

    /// A record with this key and value and timestamp 0.
    #[inline]
    pub fn keyed(key: impl Into<Bytes<'a>>, value: impl Into<Bytes<'a>>) -> Record<'a> {
        Record {
            key: Some(key.into()),
            value: value.into(),
            timestamp_ms: 0,
        }
    }

    /// The same record with this key.
    #[inline]
    pub fn with_key(self, key: impl Into<Bytes<'a>>) -> Record<'a> {
        Record {
            key: Some(key.into()),
            ..self
        }
    }

    /// The same record without a key.
    #[inline]
    pub fn without_key(self) -> Record<'a> {
        Record { key: None, ..self }
    }

    /// The same record with this value.
    #[inline]
    pub fn with_value(self, value: impl Into<Bytes<'a>>) -> Record<'a> {
        Record {
            value: value.into(),
            ..self
        }
    }

    /// The same record with this timestamp.
    #[inline]
    pub fn with_timestamp(self, timestamp_ms: i64) -> Record<'a> {
        Record { timestamp_ms, ..self }
    }

    /// The value as UTF-8 text, or an error that says it is not.
    #[inline]
    pub fn value_str(&self) -> Result<&str, UdfError> {
        Ok(crate::text::ascii_or_utf8(self.value.as_bytes())?)
    }

    /// The value as UTF-8 text borrowed from the input batch for the batch's lifetime `'a`, so
    /// records the UDF returns may point into it without a copy (split a line into words, pick a
    /// field as the key). Values the UDF built itself are not in the batch: read those with
    /// [`Record::value_str`].
    #[inline(always)]
    pub fn value_text(&self) -> Result<&'a str, UdfError> {
        match self.value.batch_bytes() {
            Some(b) => Ok(crate::text::ascii_or_utf8(b)?),
            None => Err(UdfError::new(
                "value_text() reads values from the input batch, and this value was built by the UDF: use value_str()",
            )),
        }
    }

    /// The key as UTF-8 text (`None` without a key), or an error that says it is not text.
    pub fn key_str(&self) -> Result<Option<&str>, UdfError> {
        match &self.key {
            Some(k) => Ok(Some(std::str::from_utf8(k.as_bytes())?)),
            None => Ok(None),
        }
    }

    /// The value as a number (8 bytes, little-endian), or an error that says it is not one.
    pub fn value_i64(&self) -> Result<i64, UdfError> {
        <i64 as crate::ReduceValue>::decode(self.value.as_bytes())
    }

    /// An owned copy that no longer borrows the batch.
    pub fn into_owned(self) -> Record<'static> {
        Record {
            key: self.key.map(Bytes::into_owned),
            value: self.value.into_owned(),
            timestamp_ms: self.timestamp_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_and_text_helpers() {
        let r = Record::new("hello").with_key("k").with_timestamp(5);
        assert_eq!(r.value_str().unwrap(), "hello");
        assert_eq!(r.key_str().unwrap(), Some("k"));
        assert_eq!(r.timestamp_ms, 5);
        let bad = Record::new(&[0xff_u8, 0xfe][..]);
        assert!(bad.value_str().unwrap_err().message().contains("not UTF-8"));
        assert_eq!(Record::keyed("a", 3i64).value_i64().unwrap(), 3);
        assert!(Record::new("abc").value_i64().is_err());
    }
}
