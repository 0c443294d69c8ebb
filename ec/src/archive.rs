//! Checking a stored fragment archive without decoding it.
//!
//! A fragment archive is the run of fragment `i` of every segment of one object: each
//! fragment an 80-byte header followed by the payload length the header states. Reading
//! the headers in turn is enough to walk it, so a checker fed the archive in pieces of
//! any size (as an auditor reads a file) can tell, with no more memory than one header,
//! whether every header is sound (magic, metadata checksum), every fragment carries the
//! archive's index, and the file ends exactly at a fragment boundary. The payloads
//! themselves are not judged: the archive's MD5 against its stored ETag covers them.

use crate::header::{FragmentHeader, HEADER_LEN};

/// Walks a fragment archive as its bytes are fed in; see the module documentation.
#[derive(Debug)]
pub struct ArchiveChecker {
    index: u32,
    header: Vec<u8>,
    /// Payload bytes of the current fragment still to come.
    payload_left: u64,
    fragments: u64,
    offset: u64,
}

impl ArchiveChecker {
    /// A checker for an archive whose fragments must all carry backend index `index`
    /// (the node index modulo the unique fragment count, when fragments are duplicated).
    pub fn new(index: u32) -> ArchiveChecker {
        ArchiveChecker {
            index,
            header: Vec::with_capacity(HEADER_LEN),
            payload_left: 0,
            fragments: 0,
            offset: 0,
        }
    }

    /// Takes the next bytes of the archive; the first fault found is the error.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            if self.payload_left > 0 {
                let n = bytes
                    .len()
                    .min(self.payload_left.min(usize::MAX as u64) as usize);
                self.payload_left -= n as u64;
                self.offset += n as u64;
                bytes = &bytes[n..];
                continue;
            }
            let n = bytes.len().min(HEADER_LEN - self.header.len());
            self.header.extend_from_slice(&bytes[..n]);
            bytes = &bytes[n..];
            if self.header.len() < HEADER_LEN {
                break;
            }
            let at = self.offset;
            let h = FragmentHeader::parse(&self.header)
                .map_err(|e| format!("fragment {} (byte {at}): {e}", self.fragments))?;
            if h.index != self.index {
                return Err(format!(
                    "fragment {} (byte {at}) has index {}, the archive is index {}",
                    self.fragments, h.index, self.index
                ));
            }
            self.offset += HEADER_LEN as u64;
            self.payload_left = u64::from(h.size);
            self.fragments += 1;
            self.header.clear();
        }
        Ok(())
    }

    /// The archive is complete: it must end where a fragment ends. Gives the number of
    /// fragments seen.
    pub fn finish(&self) -> Result<u64, String> {
        if !self.header.is_empty() || self.payload_left > 0 {
            // Counted from 0; a fragment is counted once its header has been read.
            let current = self.fragments - u64::from(self.payload_left > 0);
            return Err(format!(
                "the archive ends inside fragment {current} (after byte {})",
                self.offset + self.header.len() as u64
            ));
        }
        Ok(self.fragments)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Codec;

    /// Fragment archive `index` of `data` cut into `segment`-byte segments.
    fn archive(codec: &Codec, data: &[u8], segment: usize, index: usize) -> Vec<u8> {
        data.chunks(segment)
            .flat_map(|seg| codec.encode(seg).swap_remove(index))
            .collect()
    }

    fn check(bytes: &[u8], index: u32, piece: usize) -> Result<u64, String> {
        let mut c = ArchiveChecker::new(index);
        for p in bytes.chunks(piece.max(1)) {
            c.feed(p)?;
        }
        c.finish()
    }

    #[test]
    fn sound_archives_pass_whatever_the_read_size() {
        let codec = Codec::new("liberasurecode_rs_vand", 4, 2).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for index in [0usize, 3, 5] {
            let a = archive(&codec, &data, 4096, index);
            for piece in [1, 79, 80, 81, 1000, a.len()] {
                assert_eq!(check(&a, index as u32, piece), Ok(3), "piece {piece}");
            }
        }
        assert_eq!(
            check(&[], 0, 10),
            Ok(0),
            "an empty object's archive is empty"
        );
    }

    #[test]
    fn bad_headers_wrong_indexes_and_torn_ends_are_found() {
        let codec = Codec::new("isa_l_rs_vand", 4, 2).unwrap();
        let data = vec![0x42u8; 9000];
        let a = archive(&codec, &data, 4096, 2);
        let frag_len = codec.fragment_size(4096);
        let mut bad = a.clone();
        bad[frag_len + 10] ^= 0x01; // a header field of fragment 1: its checksum fails
        let e = check(&bad, 2, 4096).unwrap_err();
        assert!(e.starts_with("fragment 1 (byte "), "{e}");
        let e = check(&a, 3, 4096).unwrap_err();
        assert!(e.contains("has index 2, the archive is index 3"), "{e}");
        let e = check(&a[..a.len() - 5], 2, 4096).unwrap_err();
        assert!(e.contains("ends inside fragment 2"), "{e}");
        let e = check(&a[..frag_len + 40], 2, 7).unwrap_err();
        assert!(e.contains("ends inside fragment 1"), "{e}");
    }
}
