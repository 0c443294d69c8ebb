//! liberasurecode's 80-byte fragment header (`fragment_header_t`).
//!
//! Layout, packed, in the writer's byte order (little-endian on every host pyeclib ships
//! wheels for; a reader recognises the other order by a byte-swapped magic):
//!
//! | offset | field                          | type      |
//! |--------|--------------------------------|-----------|
//! | 0      | index                          | u32       |
//! | 4      | size (payload bytes)           | u32       |
//! | 8      | frag_backend_metadata_size     | u32       |
//! | 12     | orig_data_size                 | u64       |
//! | 20     | chksum_type (1 none, 2 crc32, 3 md5) | u8  |
//! | 21     | chksum                         | u32 x 8   |
//! | 53     | chksum_mismatch                | u8        |
//! | 54     | backend_id                     | u8        |
//! | 55     | backend_version                | u32       |
//! | 59     | magic 0x0b0c5ecc               | u32       |
//! | 63     | libec_version                  | u32       |
//! | 67     | metadata_chksum                | u32       |
//! | 71     | padding to 16-byte alignment   | 9 x 0     |
//!
//! `metadata_chksum` is the zlib CRC-32 of bytes 0..59; liberasurecode checks it when
//! `libec_version` is 1.2.0 or later.

use crate::Error;

pub const HEADER_LEN: usize = 80;
/// Bytes covered by `metadata_chksum`: the `fragment_metadata_t` struct.
pub const METADATA_LEN: usize = 59;
pub const MAGIC: u32 = 0x0b0c_5ecc;
/// The liberasurecode version pyeclib 1.8.0's wheel writes: 1.8.0 as
/// `(major << 16) | (minor << 8) | rev`.
pub const LIBEC_VERSION: u32 = 0x0001_0800;
/// Headers older than liberasurecode 1.2.0 carry no metadata checksum.
const FIRST_CHECKSUMMED_VERSION: u32 = 0x0001_0200;

pub const CHKSUM_NONE: u8 = 1;
pub const CHKSUM_CRC32: u8 = 2;
pub const CHKSUM_MD5: u8 = 3;

/// A parsed fragment header, fields in host order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FragmentHeader {
    pub index: u32,
    /// Payload bytes after the header.
    pub size: u32,
    pub backend_metadata_size: u32,
    /// Length of the segment this fragment belongs to.
    pub orig_data_size: u64,
    pub chksum_type: u8,
    pub chksum: [u32; 8],
    pub chksum_mismatch: u8,
    pub backend_id: u8,
    pub backend_version: u32,
    pub libec_version: u32,
    pub metadata_chksum: u32,
}

impl FragmentHeader {
    /// Parses and checks the first 80 bytes of `fragment`: length, magic, and the metadata
    /// checksum (for `libec_version` >= 1.2.0, as liberasurecode). It does not look at the
    /// payload or judge the backend; [`crate::Codec`] does that.
    pub fn parse(fragment: &[u8]) -> Result<FragmentHeader, Error> {
        let bad = |reason: String| Error::BadHeader(reason);
        if fragment.len() < HEADER_LEN {
            return Err(bad(format!(
                "fragment is {} bytes, shorter than the {HEADER_LEN}-byte header",
                fragment.len()
            )));
        }
        let raw_magic = u32::from_le_bytes(word(fragment, 59));
        let swapped = if raw_magic == MAGIC {
            false
        } else if raw_magic.swap_bytes() == MAGIC {
            true
        } else {
            return Err(bad(format!(
                "bad magic {raw_magic:#010x}, want {MAGIC:#010x}"
            )));
        };
        let u32_at = |at: usize| {
            let v = u32::from_le_bytes(word(fragment, at));
            if swapped {
                v.swap_bytes()
            } else {
                v
            }
        };
        let mut orig = [0u8; 8];
        orig.copy_from_slice(&fragment[12..20]);
        let orig_data_size = if swapped {
            u64::from_be_bytes(orig)
        } else {
            u64::from_le_bytes(orig)
        };
        let header = FragmentHeader {
            index: u32_at(0),
            size: u32_at(4),
            backend_metadata_size: u32_at(8),
            orig_data_size,
            chksum_type: fragment[20],
            chksum: std::array::from_fn(|i| u32_at(21 + 4 * i)),
            chksum_mismatch: fragment[53],
            backend_id: fragment[54],
            backend_version: u32_at(55),
            libec_version: u32_at(63),
            metadata_chksum: u32_at(67),
        };
        if header.libec_version == 0 {
            return Err(bad("libec_version is 0".into()));
        }
        if header.libec_version >= FIRST_CHECKSUMMED_VERSION {
            let computed = crc32fast::hash(&fragment[..METADATA_LEN]);
            // liberasurecode also accepts its legacy CRC (what it wrote before 1.5.0, and
            // still does under LIBERASURECODE_WRITE_LEGACY_CRC).
            if computed != header.metadata_chksum
                && legacy_crc32(&fragment[..METADATA_LEN]) != header.metadata_chksum
            {
                return Err(bad(format!(
                    "metadata checksum {:#010x} does not match the header's {:#010x}",
                    computed, header.metadata_chksum
                )));
            }
        }
        Ok(header)
    }

    /// The 80 bytes liberasurecode writes for this header (little-endian), with
    /// `metadata_chksum` computed afresh.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&self.index.to_le_bytes());
        b[4..8].copy_from_slice(&self.size.to_le_bytes());
        b[8..12].copy_from_slice(&self.backend_metadata_size.to_le_bytes());
        b[12..20].copy_from_slice(&self.orig_data_size.to_le_bytes());
        b[20] = self.chksum_type;
        for (i, c) in self.chksum.iter().enumerate() {
            b[21 + 4 * i..25 + 4 * i].copy_from_slice(&c.to_le_bytes());
        }
        b[53] = self.chksum_mismatch;
        b[54] = self.backend_id;
        b[55..59].copy_from_slice(&self.backend_version.to_le_bytes());
        b[59..63].copy_from_slice(&MAGIC.to_le_bytes());
        b[63..67].copy_from_slice(&self.libec_version.to_le_bytes());
        let chksum = crc32fast::hash(&b[..METADATA_LEN]);
        b[67..71].copy_from_slice(&chksum.to_le_bytes());
        b
    }
}

/// The reflected CRC-32 table (polynomial 0xEDB88320), as zlib's.
static CRC_TABLE: [u32; 256] = crc_table();

const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            bit += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

/// liberasurecode's `liberasurecode_crc32_alt`: zlib's CRC-32 except that the running
/// value is shifted right as a signed int, so its top bit smears down (the bug behind
/// Launchpad #1666320, kept readable for old fragments).
pub(crate) fn legacy_crc32(bytes: &[u8]) -> u32 {
    let mut crc: i32 = -1;
    for &b in bytes {
        crc = (CRC_TABLE[((crc as u32 ^ u32::from(b)) & 0xff) as usize] as i32) ^ (crc >> 8);
    }
    !(crc as u32)
}

fn word(bytes: &[u8], at: usize) -> [u8; 4] {
    [bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FragmentHeader {
        FragmentHeader {
            index: 4,
            size: 6,
            backend_metadata_size: 0,
            orig_data_size: 17,
            chksum_type: CHKSUM_NONE,
            chksum: [0; 8],
            chksum_mismatch: 0,
            backend_id: 6,
            backend_version: 0x0001_0000,
            libec_version: LIBEC_VERSION,
            metadata_chksum: 0,
        }
    }

    #[test]
    fn writes_what_pyeclib_wrote() {
        // Fragment 4 of liberasurecode_rs_vand 4+2 encoding bytes 0..17 (pyeclib 1.8.0).
        let want = "0400000006000000000000001100000000000000010000000000000000000000\
                    000000000000000000000000000000000000000000000600000100cc5e0c0b\
                    000801007dbb03e4000000000000000000";
        let bytes = sample().to_bytes();
        assert_eq!(hex(&bytes), want);
        let parsed = FragmentHeader::parse(&bytes).unwrap();
        assert_eq!(parsed.metadata_chksum, 0xe403_bb7d);
        assert_eq!(
            FragmentHeader {
                metadata_chksum: 0,
                ..parsed
            },
            sample()
        );
    }

    #[test]
    fn refuses_short_bad_magic_and_bad_checksum() {
        let good = sample().to_bytes();
        assert!(FragmentHeader::parse(&good[..79])
            .unwrap_err()
            .to_string()
            .contains("shorter"));
        let mut m = good;
        m[60] ^= 1;
        assert!(FragmentHeader::parse(&m)
            .unwrap_err()
            .to_string()
            .contains("magic"));
        let mut c = good;
        c[12] ^= 1; // orig_data_size changed under the checksum
        assert!(FragmentHeader::parse(&c)
            .unwrap_err()
            .to_string()
            .contains("checksum"));
    }

    #[test]
    fn the_table_is_zlibs_crc() {
        // The table is zlib's; the signed shift makes the legacy CRC differ on ordinary
        // input (golden tests check it against liberasurecode's own legacy headers).
        assert_eq!(CRC_TABLE[1], 0x7707_3096);
        assert_ne!(legacy_crc32(b"123456789"), crc32fast::hash(b"123456789"));
    }

    #[test]
    fn reads_the_other_byte_order() {
        let h = sample();
        let mut b = [0u8; HEADER_LEN];
        b[0..4].copy_from_slice(&h.index.to_be_bytes());
        b[4..8].copy_from_slice(&h.size.to_be_bytes());
        b[12..20].copy_from_slice(&h.orig_data_size.to_be_bytes());
        b[20] = h.chksum_type;
        b[54] = h.backend_id;
        b[55..59].copy_from_slice(&h.backend_version.to_be_bytes());
        b[59..63].copy_from_slice(&MAGIC.to_be_bytes());
        b[63..67].copy_from_slice(&LIBEC_VERSION.to_be_bytes());
        let sum = crc32fast::hash(&b[..METADATA_LEN]);
        b[67..71].copy_from_slice(&sum.to_be_bytes());
        let parsed = FragmentHeader::parse(&b).unwrap();
        assert_eq!(
            (parsed.index, parsed.size, parsed.orig_data_size),
            (4, 6, 17)
        );
        assert_eq!(parsed.backend_version, 0x0001_0000);
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
