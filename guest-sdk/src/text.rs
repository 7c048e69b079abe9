//! Fast text helpers for parsing delimited lines, written for wasm: they look at 8 bytes per
//! loop iteration (SWAR) instead of one, because in a sandboxed module every loop iteration also
//! pays an interruption check. Natively they are at least as fast as the `str` methods.
//!
//! ```
//! use sluice_guest::text::{ascii_or_utf8, fields, parse_i64};
//!
//! let line = ascii_or_utf8(b"u7,1700000000,/home").unwrap();
//! let [user, ts, page] = fields::<3>(line, b',').unwrap();
//! assert_eq!((user, parse_i64(ts), page), ("u7", Some(1_700_000_000), "/home"));
//! ```

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

#[inline(always)]
fn load8(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// A mask with 0x80 in each byte of `x` that is zero (exact: no false positives).
#[inline(always)]
fn zero_bytes(x: u64) -> u64 {
    !(((x & LOW7).wrapping_add(LOW7)) | x | LOW7)
}

/// `bytes` as `&str`: checks 8 bytes at a time for ASCII and falls back to the full UTF-8 check
/// only for text that is not ASCII.
#[inline(always)]
pub fn ascii_or_utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    let mut i = 0;
    let mut acc = 0u64;
    while i + 8 <= bytes.len() {
        acc |= load8(bytes, i);
        i += 8;
    }
    if bytes.len() >= 8 {
        acc |= load8(bytes, bytes.len() - 8);
    } else {
        for &b in bytes {
            acc |= b as u64;
        }
    }
    if acc & HI == 0 {
        // SAFETY: every byte is below 0x80, so the bytes are ASCII and thus UTF-8.
        Ok(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        std::str::from_utf8(bytes)
    }
}

/// Splits `line` at the first `N - 1` occurrences of the ASCII byte `sep`; the last field takes
/// the rest of the line (separators included). `None` if there are fewer than `N - 1`.
///
/// # Panics
/// If `sep` is not ASCII (it could split a character in two).
#[inline(always)]
pub fn fields<const N: usize>(line: &str, sep: u8) -> Option<[&str; N]> {
    assert!(sep.is_ascii(), "fields() splits at an ASCII byte");
    let bytes = line.as_bytes();
    let mut cuts = [0usize; N];
    let mut found = 0;
    let want = N.saturating_sub(1);
    if want == 0 {
        return Some([line; N]);
    }
    let pattern = LO.wrapping_mul(sep as u64);
    let mut i = 0;
    let mut scan = |chunk: u64, base: usize, skip_below: usize, found: &mut usize| {
        let mut m = zero_bytes(chunk ^ pattern);
        while m != 0 {
            let pos = base + (m.trailing_zeros() / 8) as usize;
            m &= m - 1;
            if pos >= skip_below {
                cuts[*found] = pos;
                *found += 1;
                if *found == want {
                    return true;
                }
            }
        }
        false
    };
    let mut done = false;
    while !done && i + 8 <= bytes.len() {
        done = scan(load8(bytes, i), i, 0, &mut found);
        i += 8;
    }
    if !done && i < bytes.len() {
        if bytes.len() >= 8 {
            // The last 8 bytes, overlapping what was scanned; positions below `i` were seen.
            let base = bytes.len() - 8;
            scan(load8(bytes, base), base, i, &mut found);
        } else {
            for (pos, &b) in bytes.iter().enumerate() {
                if b == sep {
                    cuts[found] = pos;
                    found += 1;
                    if found == want {
                        break;
                    }
                }
            }
        }
    }
    if found < want {
        return None;
    }
    let mut out = [""; N];
    let mut start = 0;
    for (k, slot) in out.iter_mut().enumerate() {
        let end = if k < want { cuts[k] } else { bytes.len() };
        // Cuts are at ASCII bytes, so both ends are character boundaries.
        *slot = &line[start..end];
        start = end + 1;
    }
    Some(out)
}

/// The pieces of `line` between occurrences of the ASCII byte `sep`, empty pieces kept (as
/// Python's `line.split(sep)`), found 8 bytes at a time.
///
/// # Panics
/// If `sep` is not ASCII.
#[inline]
pub fn split(line: &str, sep: u8) -> Split<'_> {
    assert!(sep.is_ascii(), "split() splits at an ASCII byte");
    Split {
        line,
        pos: 0,
        sep,
        pattern: LO.wrapping_mul(sep as u64),
        done: false,
    }
}

/// The iterator of [`split`].
#[derive(Clone, Debug)]
pub struct Split<'a> {
    line: &'a str,
    pos: usize,
    sep: u8,
    pattern: u64,
    done: bool,
}

impl<'a> Split<'a> {
    #[inline(always)]
    fn next_sep(&self) -> Option<usize> {
        let b = self.line.as_bytes();
        let mut i = self.pos;
        while i + 8 <= b.len() {
            let m = zero_bytes(load8(b, i) ^ self.pattern);
            if m != 0 {
                return Some(i + (m.trailing_zeros() / 8) as usize);
            }
            i += 8;
        }
        b[i..].iter().position(|&c| c == self.sep).map(|p| i + p)
    }
}

impl<'a> Iterator for Split<'a> {
    type Item = &'a str;

    #[inline]
    fn next(&mut self) -> Option<&'a str> {
        if self.done {
            return None;
        }
        let start = self.pos;
        match self.next_sep() {
            Some(at) => {
                self.pos = at + 1;
                // `sep` is ASCII, so `at` and `at + 1` are character boundaries.
                Some(&self.line[start..at])
            }
            None => {
                self.done = true;
                Some(&self.line[start..])
            }
        }
    }
}

/// Parses a decimal integer with an optional leading `-` or `+` (no spaces, no `_`), 8 digits
/// per step. `None` if it is not one or does not fit an `i64`.
#[inline(always)]
pub fn parse_i64(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 18 {
        // 19 digits may overflow: let the standard parser decide.
        return if digits.is_empty() { None } else { s.parse().ok() };
    }
    let mut v: u64 = 0;
    let mut i = 0;
    while i + 8 <= digits.len() {
        v = v * 100_000_000 + eight_digits(load8(digits, i))?;
        i += 8;
    }
    while i < digits.len() {
        let d = digits[i].wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + d as u64;
        i += 1;
    }
    // At most 18 digits: below 10^18 < 2^63, so the cast cannot wrap.
    let v = v as i64;
    Some(if neg { -v } else { v })
}

/// The value of 8 ASCII digits (first digit in the lowest byte), or `None` if any is not one.
#[inline(always)]
fn eight_digits(chunk: u64) -> Option<u64> {
    let all_digits = (chunk & 0xf0f0_f0f0_f0f0_f0f0) == 0x3030_3030_3030_3030
        && ((chunk.wrapping_add(0x0606_0606_0606_0606)) & 0xf0f0_f0f0_f0f0_f0f0) == 0x3030_3030_3030_3030;
    if !all_digits {
        return None;
    }
    let v = chunk - 0x3030_3030_3030_3030;
    let v = (v * 10) + (v >> 8);
    let v = ((v & 0x0000_00ff_0000_00ff).wrapping_mul(100 + (1_000_000 << 32))
        + ((v >> 16) & 0x0000_00ff_0000_00ff).wrapping_mul(1 + (10_000 << 32)))
        >> 32;
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_match_split_once_chains() {
        for line in [
            "",
            "a",
            "a,b",
            "a,b,c",
            "a,b,c,d,e",
            ",,,",
            "long-field-one,long-field-two,x",
            "1234567,",
            ",1234567",
        ] {
            let f3 = fields::<3>(line, b',');
            let by_std = line
                .split_once(',')
                .and_then(|(a, rest)| rest.split_once(',').map(|(b, c)| [a, b, c]));
            assert_eq!(f3, by_std, "{line:?}");
        }
        assert_eq!(fields::<1>("a,b", b','), Some(["a,b"]));
        assert_eq!(fields::<2>("é|ü|x", b'|'), Some(["é", "ü|x"]));
    }

    #[test]
    fn split_matches_str_split() {
        for line in [
            "",
            " ",
            "a",
            "a b",
            " a  b ",
            "one two three four five six seven",
            "ab cd ef gh ij",
            "é ü x",
            "        ",
            "x        y",
        ] {
            let got: Vec<_> = split(line, b' ').collect();
            let want: Vec<_> = line.split(' ').collect();
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn parse_i64_matches_std() {
        for s in [
            "0",
            "7",
            "-1",
            "+5",
            "1700000000",
            "-1700000000",
            "123456789012345678",
            "-123456789012345678",
            "9223372036854775807",
            "-9223372036854775808",
            "9223372036854775808",
            "",
            "-",
            "+",
            "12a4",
            "1234567a",
            " 1",
            "1 ",
            "00000000",
            "99999999",
            "12345678901234567890",
            "--1",
            "1_000",
        ] {
            assert_eq!(parse_i64(s), s.parse::<i64>().ok(), "{s:?}");
        }
    }

    #[test]
    fn ascii_or_utf8_agrees_with_from_utf8() {
        for b in [
            &b""[..],
            b"abc",
            b"abcdefgh",
            b"abcdefghi",
            "héllo wörld".as_bytes(),
            &[0xff, b'a'],
            &[b'a'; 9],
            &[0x80; 12],
        ] {
            assert_eq!(ascii_or_utf8(b).ok(), std::str::from_utf8(b).ok(), "{b:?}");
        }
    }
}
