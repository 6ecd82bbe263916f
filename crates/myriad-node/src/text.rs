//! Text that crosses from JS as UTF-16. For the one-byte strings JSON.stringify makes, reading a
//! string as UTF-16 is a widening copy on the JS thread, while N-API's UTF-8 read scans it twice
//! (length, then copy) there; the conversion to UTF-8 then runs on a worker thread.

use napi_derive::napi;

/// UTF-16 to UTF-8 as N-API's own UTF-8 read does it (a lone surrogate becomes U+FFFD), with a
/// narrowing fast path for all-ASCII text.
pub(crate) fn utf16_to_string(units: &[u16]) -> String {
    narrow_ascii(units).unwrap_or_else(|| String::from_utf16_lossy(units))
}

/// All-ASCII text as a string, `None` if any unit is wider. Checked and narrowed a block at a
/// time, with no early exit inside a block, so that both loops vectorise (a per-unit `all()`
/// does not).
fn narrow_ascii(units: &[u16]) -> Option<String> {
    let mut out = Vec::with_capacity(units.len());
    for block in units.chunks(256) {
        if block.iter().fold(0, |seen, &u| seen | u) >= 0x80 {
            return None;
        }
        out.extend(block.iter().map(|&u| u as u8));
    }
    Some(String::from_utf8(out).expect("ASCII is UTF-8"))
}

/// Many JS strings sent as one: their concatenation (`joined`, UTF-16) and each one's length in
/// UTF-16 units, [`NULL_PIECE`] for a null that takes no room. One N-API read for a whole batch
/// instead of one (with its element lookup, length scan and allocation) per string, which for a
/// large batch cost the JS thread milliseconds. The pieces are decoded into one UTF-8 buffer,
/// each on its own, so a lone surrogate at a piece's edge becomes U+FFFD as it would have in a
/// string of its own; the piece is marked, for readers that must refuse it rather than alter it.
pub(crate) struct Pieces {
    text: String,
    /// Byte offset in `text` where each piece ends.
    ends: Vec<usize>,
    kinds: Vec<Kind>,
}

/// The length that marks a null piece (no JS string is that long).
#[napi]
pub const NULL_PIECE: u32 = u32::MAX;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Null,
    /// Held a lone surrogate, replaced by U+FFFD in `text`.
    Lossy,
}

impl Pieces {
    /// `None` when the lengths do not add up to the joined text.
    pub(crate) fn split(joined: &[u16], lengths: &[u32]) -> Option<Pieces> {
        let units = |&n: &u32| if n == NULL_PIECE { 0 } else { n as usize };
        let total = lengths.iter().map(units).try_fold(0usize, |sum, n| sum.checked_add(n))?;
        if total != joined.len() {
            return None;
        }
        let kind = |&n: &u32| if n == NULL_PIECE { Kind::Null } else { Kind::Text };
        let mut ends = Vec::with_capacity(lengths.len());
        let mut kinds: Vec<Kind> = lengths.iter().map(kind).collect();
        if let Some(ascii) = narrow_ascii(joined) {
            // All ASCII: a unit is a byte, so the offsets are the running sums of the lengths.
            let mut end = 0;
            for n in lengths.iter().map(units) {
                end += n;
                ends.push(end);
            }
            return Some(Pieces { text: ascii, ends, kinds });
        }
        let mut text = String::with_capacity(joined.len() + joined.len() / 2);
        let mut start = 0;
        for (n, kind) in lengths.iter().map(units).zip(&mut kinds) {
            let piece = &joined[start..start + n];
            text.extend(char::decode_utf16(piece.iter().copied()).map(|c| {
                c.unwrap_or_else(|_| {
                    *kind = Kind::Lossy;
                    char::REPLACEMENT_CHARACTER
                })
            }));
            start += n;
            ends.push(text.len());
        }
        Some(Pieces { text, ends, kinds })
    }

    /// Each piece's text: a lone surrogate reads as U+FFFD, a null piece as empty.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(self.ends.iter().copied()).map(|(a, b)| &self.text[a..b])
    }

    /// Each piece as the sink takes it: null, text, or refused for its lone surrogate.
    pub(crate) fn sink_pieces(&self) -> Vec<myriad_core::sink::Piece<'_>> {
        use myriad_core::sink::Piece;
        self.iter()
            .zip(&self.kinds)
            .map(|(text, kind)| match kind {
                Kind::Text => Piece::Text(text),
                Kind::Null => Piece::Null,
                Kind::Lossy => Piece::LoneSurrogate,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn pieces_split_ascii_and_wider_text_at_the_given_lengths() {
        let parts = ["{\"a\":1}", "", "héllo 🙂", "x"];
        let lengths: Vec<u32> = parts.iter().map(|p| units(p).len() as u32).collect();
        let joined = units(&parts.concat());
        let pieces = Pieces::split(&joined, &lengths).unwrap();
        assert_eq!(pieces.iter().collect::<Vec<_>>(), parts);
        let ascii = ["ab", "c", "", "def"];
        let pieces = Pieces::split(&units(&ascii.concat()), &[2, 1, 0, 3]).unwrap();
        assert_eq!(pieces.iter().collect::<Vec<_>>(), ascii);
    }

    #[test]
    fn a_surrogate_pair_split_across_pieces_becomes_two_replacement_characters() {
        let pair = units("🙂");
        let joined = [b'a' as u16, pair[0], pair[1], b'b' as u16];
        let pieces = Pieces::split(&joined, &[2, 2]).unwrap();
        assert_eq!(pieces.iter().collect::<Vec<_>>(), ["a\u{FFFD}", "\u{FFFD}b"]);
    }

    #[test]
    fn nulls_and_lone_surrogates_are_marked_for_the_sink() {
        use myriad_core::sink::Piece;
        let pair = units("🙂");
        let joined = [b'a' as u16, 0xD800, b'b' as u16, pair[0], pair[1]];
        let pieces = Pieces::split(&joined, &[NULL_PIECE, 1, 2, NULL_PIECE, 2, 0]).unwrap();
        let expected = [Piece::Null, Piece::Text("a"), Piece::LoneSurrogate, Piece::Null, Piece::Text("🙂"), Piece::Text("")];
        assert_eq!(pieces.sink_pieces(), expected);
        let ascii = Pieces::split(&units("ab"), &[NULL_PIECE, 2, NULL_PIECE]).unwrap();
        assert_eq!(ascii.sink_pieces(), [Piece::Null, Piece::Text("ab"), Piece::Null]);
        assert!(Pieces::split(&units("ab"), &[NULL_PIECE, NULL_PIECE]).is_none());
    }

    #[test]
    fn lengths_that_do_not_add_up_are_refused() {
        let joined = units("abc");
        assert!(Pieces::split(&joined, &[1, 1]).is_none());
        assert!(Pieces::split(&joined, &[2, 2]).is_none());
        assert!(Pieces::split(&joined, &[u32::MAX, u32::MAX, 5]).is_none());
        assert_eq!(Pieces::split(&[], &[]).unwrap().iter().count(), 0);
    }

    #[test]
    fn ascii_and_the_rest_convert_like_napi() {
        let units: Vec<u16> = "héllo 🙂".encode_utf16().collect();
        assert_eq!(utf16_to_string(&units), "héllo 🙂");
        assert_eq!(utf16_to_string(&[b'a' as u16, 0xD800, b'b' as u16]), "a\u{FFFD}b");
    }
}
