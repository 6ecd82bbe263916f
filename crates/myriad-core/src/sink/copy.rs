//! Postgres binary COPY format (sqlx has no encoder for it). Binary spares the server the text
//! parsing of timestamps and UUIDs, and the server is the bottleneck when it shares the machine.
//! Layout: signature, flags, header extension; per row a field count and length-prefixed fields
//! (-1 = NULL); a -1 trailer.

use super::rows::Cell;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
/// Microseconds between the Unix epoch and Postgres's (2000-01-01).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Rows encoded without the file header or trailer, so chunks from many calls can be concatenated
/// into one COPY stream; `ends[i]` is where row i stops, for splitting at row boundaries.
#[derive(Default)]
pub struct CopyRows {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
}

impl CopyRows {
    pub fn push(&mut self, cells: &[Cell]) {
        let b = &mut self.bytes;
        b.extend_from_slice(&(cells.len() as i16).to_be_bytes());
        for cell in cells {
            match cell {
                Cell::Null => b.extend_from_slice(&(-1i32).to_be_bytes()),
                Cell::Text(s) => field(b, s.as_bytes()),
                Cell::Uuid(u) => field(b, u),
                Cell::Timestamp(us) => field(b, &(us - PG_EPOCH_MICROS).to_be_bytes()),
                Cell::Json(s) => {
                    // jsonb's binary form is a version byte (1) and the JSON text.
                    b.extend_from_slice(&(s.len() as i32 + 1).to_be_bytes());
                    b.push(1);
                    b.extend_from_slice(s.as_bytes());
                }
                Cell::Float(v) => field(b, &v.to_be_bytes()),
                // int8's binary form: 8 bytes, big-endian.
                Cell::Int(v) => field(b, &v.to_be_bytes()),
                // boolean's binary form: one byte, 0 or 1.
                Cell::Bool(v) => field(b, &[u8::from(*v)]),
            }
        }
        self.ends.push(b.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The encoded size of row `i`.
    pub fn row_len(&self, i: usize) -> usize {
        self.ends[i] - if i == 0 { 0 } else { self.ends[i - 1] }
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

fn field(b: &mut Vec<u8>, data: &[u8]) {
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
}

/// The header that opens a binary COPY stream.
pub fn header() -> Vec<u8> {
    let mut b = Vec::with_capacity(19);
    b.extend_from_slice(SIGNATURE);
    b.extend_from_slice(&0i32.to_be_bytes()); // flags: no OIDs
    b.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    b
}

pub const TRAILER: [u8; 2] = (-1i16).to_be_bytes();
