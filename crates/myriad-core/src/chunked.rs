//! `Chunked<T>`: a growable list of rows (`width` elements each) kept in chunks of a fixed number
//! of rows, for the stores that grow to millions of entries (index rows and their sketch, agent
//! records, remembered msgIds).
//!
//! Why not a `Vec`: a `Vec` doubles, and each doubling copies everything into a new allocation
//! while the old one is still held, so a store of 750 MB passes through 512 MB + 1 GB, and keeps up
//! to twice what it holds. Here a row never moves once written: only the last chunk grows (by
//! doubling, up to its full size, or exactly to a reserved size), so a store holds what it holds
//! plus less than one chunk, and growing copies at most one chunk.
//!
//! Invariant: every chunk before the one holding the last row is full; the chunk holding the last
//! row holds exactly the rows up to it; chunks after it (reserved, or one spare kept after a
//! truncation) are empty.

use std::ops::Range;

pub(crate) struct Chunked<T> {
    width: usize,
    /// log2 of the rows per chunk.
    shift: u32,
    chunks: Vec<Vec<T>>,
    rows: usize,
}

impl<T> Chunked<T> {
    /// Rows of `width` elements, `1 << shift` rows to a chunk.
    pub fn new(width: usize, shift: u32) -> Self {
        assert!(width > 0 && shift < 32, "width {width}, shift {shift}");
        Chunked { width, shift, chunks: Vec::new(), rows: 0 }
    }

    /// Rows of `width` elements, as many to a chunk (a power of two, at least `1 << min_shift`) as
    /// fit in about `chunk_bytes`.
    pub fn with_chunk_bytes(width: usize, chunk_bytes: usize, min_shift: u32) -> Self {
        Chunked::new(width, chunk_shift(width * std::mem::size_of::<T>().max(1), chunk_bytes, min_shift))
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    /// Elements per row.
    pub fn width(&self) -> usize {
        self.width
    }

    fn rows_per_chunk(&self) -> usize {
        1 << self.shift
    }

    fn mask(&self) -> usize {
        self.rows_per_chunk() - 1
    }

    /// Bytes allocated: every chunk's capacity and the list of chunks.
    pub fn heap_bytes(&self) -> usize {
        self.chunks.capacity() * std::mem::size_of::<Vec<T>>()
            + self.chunks.iter().map(|c| c.capacity()).sum::<usize>() * std::mem::size_of::<T>()
    }

    /// Makes room for `additional` more rows, so that pushing them allocates nothing: the chunk
    /// of the next row grows to what it needs (at least doubling, so that many small reservations
    /// stay amortised, never past a full chunk) and later chunks are allocated at exactly the rows
    /// still needed (full ones but the last).
    pub fn reserve(&mut self, additional: usize) {
        let (per, full) = (self.rows_per_chunk(), self.width << self.shift);
        let (mut at, mut need) = (self.rows, additional);
        while need > 0 {
            let c = at >> self.shift;
            if c == self.chunks.len() {
                self.chunks.push(Vec::new());
            }
            let here = need.min(per - (at & self.mask()));
            let want = ((at & self.mask()) + here) * self.width;
            let chunk = &mut self.chunks[c];
            if chunk.capacity() < want {
                let target = want.max(2 * chunk.capacity()).min(full);
                chunk.reserve_exact(target - chunk.len());
            }
            at += here;
            need -= here;
        }
    }

    /// The chunk that the next row goes to, with room for it.
    fn tail(&mut self) -> &mut Vec<T> {
        self.reserve(1);
        let c = self.rows >> self.shift;
        &mut self.chunks[c]
    }

    /// Element `i` of a list of width 1.
    pub fn get(&self, i: usize) -> &T {
        debug_assert!(self.width == 1 && i < self.rows);
        &self.chunks[i >> self.shift][i & self.mask()]
    }

    pub fn get_mut(&mut self, i: usize) -> &mut T {
        debug_assert!(self.width == 1 && i < self.rows);
        let mask = self.mask();
        &mut self.chunks[i >> self.shift][i & mask]
    }

    pub fn push(&mut self, value: T) {
        debug_assert_eq!(self.width, 1);
        self.tail().push(value);
        self.rows += 1;
    }

    /// Removes the last element of a list of width 1.
    pub fn pop(&mut self) -> Option<T> {
        debug_assert_eq!(self.width, 1);
        let last = self.rows.checked_sub(1)?;
        let value = self.chunks[last >> self.shift].pop();
        self.rows = last;
        self.drop_spare_chunks();
        value
    }

    /// Removes element `i` of a list of width 1; the last element takes its place.
    pub fn swap_remove(&mut self, i: usize) -> T {
        assert!(i < self.rows, "swap_remove({i}) of {} elements", self.rows);
        let last = self.pop().expect("not empty");
        if i == self.rows {
            last
        } else {
            std::mem::replace(self.get_mut(i), last)
        }
    }

    /// Every element of a list of width 1, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> + '_ {
        self.chunks.iter().flatten()
    }

    /// Row `r`.
    pub fn row(&self, r: usize) -> &[T] {
        debug_assert!(r < self.rows);
        let at = (r & self.mask()) * self.width;
        &self.chunks[r >> self.shift][at..at + self.width]
    }

    pub fn row_mut(&mut self, r: usize) -> &mut [T] {
        debug_assert!(r < self.rows);
        let at = (r & self.mask()) * self.width;
        &mut self.chunks[r >> self.shift][at..at + self.width]
    }

    /// Rows `start..start + count`, which must lie in one chunk (true of a block from [`blocks`]
    /// of a store with the same shift), as one slice.
    ///
    /// [`blocks`]: Chunked::blocks
    pub fn rows_in_chunk(&self, start: usize, count: usize) -> &[T] {
        debug_assert!(start + count <= self.rows && (count == 0 || start >> self.shift == (start + count - 1) >> self.shift));
        let at = (start & self.mask()) * self.width;
        &self.chunks[start >> self.shift][at..at + count * self.width]
    }

    /// Rows `range` as contiguous blocks of at most `max_rows` rows, none crossing a chunk:
    /// `(first row, its rows' elements)`.
    pub fn blocks(&self, range: Range<usize>, max_rows: usize) -> impl Iterator<Item = (usize, &[T])> + '_ {
        debug_assert!(range.end <= self.rows && max_rows > 0);
        let mut start = range.start;
        std::iter::from_fn(move || {
            if start >= range.end {
                return None;
            }
            let chunk_end = ((start >> self.shift) + 1) << self.shift;
            let end = range.end.min(start.saturating_add(max_rows)).min(chunk_end);
            let block = (start, self.rows_in_chunk(start, end - start));
            start = end;
            Some(block)
        })
    }

    /// Keeps the first `rows` rows; frees the chunks after them but one (a spare, so that a store
    /// that shrinks and grows around a chunk boundary does not allocate each time).
    pub fn truncate(&mut self, rows: usize) {
        if rows >= self.rows {
            return;
        }
        let first = rows >> self.shift;
        let keep = (rows & self.mask()) * self.width;
        self.chunks[first].truncate(keep);
        for chunk in &mut self.chunks[first + 1..] {
            chunk.clear();
        }
        self.rows = rows;
        self.drop_spare_chunks();
    }

    fn drop_spare_chunks(&mut self) {
        // Chunks up to the one of the next row hold rows or are that one; one more may stay.
        let used = (self.rows >> self.shift) + 1;
        if self.chunks.len() > used + 1 && self.chunks[used..].iter().all(Vec::is_empty) {
            self.chunks.truncate(used + 1);
        }
    }
}

impl<T: Copy> Chunked<T> {
    pub fn push_row(&mut self, row: &[T]) {
        assert_eq!(row.len(), self.width);
        self.tail().extend_from_slice(row);
        self.rows += 1;
    }

    /// Appends a row of `fill` and returns it to be written.
    pub fn push_row_of(&mut self, fill: T) -> &mut [T] {
        let width = self.width;
        self.reserve(1);
        self.rows += 1;
        let tail = &mut self.chunks[(self.rows - 1) >> self.shift];
        let at = tail.len();
        tail.resize(at + width, fill);
        &mut tail[at..]
    }

    /// Row `from` copied over row `to`.
    pub fn copy_row(&mut self, from: usize, to: usize) {
        let (cf, ct) = (from >> self.shift, to >> self.shift);
        let (af, at) = ((from & self.mask()) * self.width, (to & self.mask()) * self.width);
        let w = self.width;
        if cf == ct {
            self.chunks[cf].copy_within(af..af + w, at);
        } else {
            let (src, dst) = if cf < ct {
                let (a, b) = self.chunks.split_at_mut(ct);
                (&a[cf], &mut b[0])
            } else {
                let (a, b) = self.chunks.split_at_mut(cf);
                (&b[0], &mut a[ct])
            };
            dst[at..at + w].copy_from_slice(&src[af..af + w]);
        }
    }
}

impl Chunked<u8> {
    /// Appends `bytes` within one chunk (starting a new chunk if they do not fit in this one's
    /// rest, the rest padded with zeros) and returns `(offset of the first byte, padding added)`.
    /// `bytes` must fit in a chunk.
    pub fn push_unsplit(&mut self, bytes: &[u8]) -> (usize, usize) {
        debug_assert_eq!(self.width, 1);
        assert!(bytes.len() <= self.rows_per_chunk(), "{} bytes exceed a chunk of {}", bytes.len(), self.rows_per_chunk());
        let room = self.rows_per_chunk() - (self.rows & self.mask());
        let pad = if bytes.len() > room { room } else { 0 };
        if pad > 0 {
            self.reserve(pad);
            let tail = self.tail_at(self.rows);
            tail.resize(tail.len() + pad, 0);
            self.rows += pad;
        }
        let at = self.rows;
        self.reserve(bytes.len());
        self.tail_at(at).extend_from_slice(bytes);
        self.rows += bytes.len();
        (at, pad)
    }

    fn tail_at(&mut self, at: usize) -> &mut Vec<u8> {
        &mut self.chunks[at >> self.shift]
    }

    /// The bytes at `offset..offset + len`, which lie in one chunk (as [`push_unsplit`] placed them).
    ///
    /// [`push_unsplit`]: Chunked::push_unsplit
    pub fn bytes(&self, offset: usize, len: usize) -> &[u8] {
        let at = offset & self.mask();
        &self.chunks[offset >> self.shift][at..at + len]
    }
}

/// log2 of the rows of `row_bytes` bytes that fit in about `chunk_bytes`, at least `min_shift`
/// (and at most 2^20 rows).
pub(crate) fn chunk_shift(row_bytes: usize, chunk_bytes: usize, min_shift: u32) -> u32 {
    let rows = (chunk_bytes / row_bytes.max(1)).max(1);
    (usize::BITS - 1 - rows.leading_zeros()).clamp(min_shift, 20)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_stay_in_place_across_chunks_and_blocks_never_cross_one() {
        let mut c: Chunked<u32> = Chunked::new(3, 2);
        for r in 0..11u32 {
            c.push_row(&[r, r * 10, r * 100]);
        }
        assert_eq!(c.len(), 11);
        assert_eq!(c.row(9), &[9, 90, 900]);
        let blocks: Vec<(usize, usize)> = c.blocks(1..10, 3).map(|(s, b)| (s, b.len() / 3)).collect();
        assert_eq!(blocks, vec![(1, 3), (4, 3), (7, 1), (8, 2)]);
        let whole: Vec<(usize, usize)> = c.blocks(0..11, usize::MAX).map(|(s, b)| (s, b.len() / 3)).collect();
        assert_eq!(whole, vec![(0, 4), (4, 4), (8, 3)]);
        c.copy_row(10, 1);
        c.copy_row(2, 9);
        assert_eq!((c.row(1), c.row(9)), (&[10, 100, 1000][..], &[2, 20, 200][..]));
        c.truncate(5);
        assert_eq!(c.len(), 5);
        assert_eq!(c.chunks.len(), 3, "one spare chunk kept");
        c.push_row(&[7, 7, 7]);
        assert_eq!(c.row(5), &[7, 7, 7]);
        c.truncate(0);
        assert!(c.len() == 0 && c.chunks.len() <= 2);
    }

    #[test]
    fn reserve_is_exact_for_a_fresh_chunk_and_amortised_after() {
        let mut c: Chunked<u16> = Chunked::new(4, 3);
        c.reserve(11);
        // 8 rows in the first chunk, 3 in the second, exactly.
        assert_eq!(c.chunks.iter().map(Vec::capacity).collect::<Vec<_>>(), vec![32, 12]);
        for r in 0..11 {
            c.push_row_of(r)[0] = r;
        }
        assert_eq!(c.chunks.iter().map(Vec::capacity).collect::<Vec<_>>(), vec![32, 12]);
        c.push_row(&[1, 2, 3, 4]);
        // Growing the second chunk doubles it, up to a full chunk.
        assert_eq!(c.chunks[1].capacity(), 24);
        assert_eq!(c.row(3), &[3, 3, 3, 3]);
    }

    #[test]
    fn lists_push_pop_and_swap_remove() {
        let mut c: Chunked<String> = Chunked::new(1, 1);
        for i in 0..5 {
            c.push(i.to_string());
        }
        assert_eq!(c.swap_remove(1), "1");
        assert_eq!(c.iter().cloned().collect::<Vec<_>>(), vec!["0", "4", "2", "3"]);
        assert_eq!(c.swap_remove(3), "3");
        assert_eq!(c.pop().as_deref(), Some("2"));
        assert_eq!((c.len(), c.get(1).as_str()), (2, "4"));
    }

    #[test]
    fn unsplit_bytes_start_a_new_chunk_when_they_do_not_fit() {
        let mut c: Chunked<u8> = Chunked::new(1, 3);
        assert_eq!(c.push_unsplit(b"abcde"), (0, 0));
        assert_eq!(c.push_unsplit(b"fgh"), (5, 0));
        assert_eq!(c.push_unsplit(b"ij"), (8, 0));
        assert_eq!(c.push_unsplit(b"klmnopq"), (16, 6));
        assert_eq!((c.bytes(5, 3), c.bytes(16, 7)), (&b"fgh"[..], &b"klmnopq"[..]));
        assert_eq!(chunk_shift(768, 8 << 20, 7), 13);
        assert_eq!(chunk_shift(1 << 20, 8 << 20, 7), 7);
    }
}
