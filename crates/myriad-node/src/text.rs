//! Text that crosses from JS as UTF-16. For the one-byte strings JSON.stringify makes, reading a
//! string as UTF-16 is a widening copy on the JS thread, while N-API's UTF-8 read scans it twice
//! (length, then copy) there; the conversion to UTF-8 then runs on a worker thread.

/// UTF-16 to UTF-8 as N-API's own UTF-8 read does it (a lone surrogate becomes U+FFFD), with a
/// narrowing fast path for all-ASCII text that the compiler vectorises.
pub(crate) fn utf16_to_string(units: &[u16]) -> String {
    if units.iter().all(|&u| u < 0x80) {
        let ascii: Vec<u8> = units.iter().map(|&u| u as u8).collect();
        return String::from_utf8(ascii).expect("ASCII is UTF-8");
    }
    String::from_utf16_lossy(units)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_the_rest_convert_like_napi() {
        let units: Vec<u16> = "héllo 🙂".encode_utf16().collect();
        assert_eq!(utf16_to_string(&units), "héllo 🙂");
        assert_eq!(utf16_to_string(&[b'a' as u16, 0xD800, b'b' as u16]), "a\u{FFFD}b");
    }
}
