//! What the proxy needs to serve erasure-coded policies, apart from the controllers:
//! the policy's codec and numbers ([`EcPolicy`]), the mapping of client byte ranges to
//! segments and fragment-archive ranges, and a reader that cuts a fragment archive's
//! byte stream back into fragments (each names its own length in its header, so no
//! arithmetic on the archive length is needed to find the boundaries).

use axum::body::Body;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use ringsmith::swift::policy::{EcParams, Policy, PolicyType};
use ringsmith_ec::Codec;

/// An erasure-coded storage policy as the proxy uses it.
pub struct EcPolicy {
    pub codec: Codec,
    pub k: usize,
    pub m: usize,
    pub segment_size: u64,
    pub duplication_factor: usize,
    /// Length of each fragment (header included) of a full segment: Swift's
    /// `policy.fragment_size`, the stride of a fragment archive.
    pub fragment_size: u64,
}

impl EcPolicy {
    /// `None` for a replicated policy; an error naming the policy when its codec cannot be
    /// built.
    pub fn of(policy: &Policy) -> Result<Option<EcPolicy>, String> {
        let PolicyType::ErasureCoding(p) = &policy.policy_type else {
            return Ok(None);
        };
        EcPolicy::from_params(p)
            .map(Some)
            .map_err(|e| format!("storage policy {}: {e}", policy.index))
    }

    pub fn from_params(p: &EcParams) -> Result<EcPolicy, String> {
        let codec = Codec::new(&p.ec_type, p.ndata as usize, p.nparity as usize)
            .map_err(|e| e.to_string())?;
        let segment = usize::try_from(p.segment_size).map_err(|e| e.to_string())?;
        Ok(EcPolicy {
            fragment_size: codec.fragment_size(segment) as u64,
            codec,
            k: p.ndata as usize,
            m: p.nparity as usize,
            segment_size: p.segment_size,
            duplication_factor: p.duplication_factor.max(1) as usize,
        })
    }

    /// Distinct fragment indexes (`k + m`).
    pub fn unique_fragments(&self) -> usize {
        self.k + self.m
    }

    /// Swift's EC write quorum: `k` plus the parity pyeclib's Reed-Solomon needs (one),
    /// times the duplication factor.
    pub fn quorum(&self) -> usize {
        (self.k + 1) * self.duplication_factor
    }

    /// Swift's `ec_scheme_description`, stored in every archive's sysmeta.
    pub fn scheme(&self) -> String {
        format!("{} {}+{}", self.codec.ec_type().name(), self.k, self.m)
    }

    /// The fragment archive length of an object of `len` bytes: whole segments at
    /// `fragment_size`, then the tail segment's fragment (Swift sends this as
    /// `X-Backend-Obj-Content-Length`).
    pub fn archive_length(&self, len: u64) -> u64 {
        let full = len / self.segment_size;
        let tail = len % self.segment_size;
        let mut total = full * self.fragment_size;
        if tail > 0 {
            total += self.codec.fragment_size(tail as usize) as u64;
        }
        total
    }

    /// Number of segments of an object of `len` bytes.
    pub fn segments(&self, len: u64) -> u64 {
        len.div_ceil(self.segment_size)
    }

    /// Length of segment `i` of an object of `len` bytes.
    pub fn segment_length(&self, i: u64, len: u64) -> u64 {
        (len - (i * self.segment_size).min(len)).min(self.segment_size)
    }
}

/// The work for one client byte range `start..=end` of an object: which segments to
/// decode, which bytes of the fragment archives hold them, and how much of the decoded
/// segments to drop in front.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentPlan {
    pub first_segment: u64,
    pub segment_count: u64,
    /// Inclusive archive byte range to ask for (the object server clips the end).
    pub fragment_range: (u64, u64),
    pub skip: u64,
    pub take: u64,
}

impl EcPolicy {
    pub fn plan(&self, start: u64, end: u64) -> SegmentPlan {
        let first = start / self.segment_size;
        let last = end / self.segment_size;
        SegmentPlan {
            first_segment: first,
            segment_count: last - first + 1,
            fragment_range: (
                first * self.fragment_size,
                (last + 1) * self.fragment_size - 1,
            ),
            skip: start - first * self.segment_size,
            take: end - start + 1,
        }
    }
}

/// Reads fragments one at a time off a fragment archive's byte stream.
pub struct FragmentReader {
    stream: futures_util::stream::BoxStream<'static, Result<Bytes, axum::Error>>,
    buf: BytesMut,
    ended: bool,
    /// Largest fragment accepted (header included): a corrupt length must not make the
    /// proxy buffer without bound.
    max: usize,
}

/// liberasurecode's header magic, as written on a little-endian host.
const MAGIC_LE: [u8; 4] = 0x0b0c_5eccu32.to_le_bytes();
const HEADER_LEN: usize = 80;

impl FragmentReader {
    pub fn new(body: Body, max: usize) -> FragmentReader {
        FragmentReader {
            stream: body.into_data_stream().boxed(),
            buf: BytesMut::new(),
            ended: false,
            max,
        }
    }

    async fn fill(&mut self, want: usize) -> Result<bool, String> {
        while self.buf.len() < want {
            if self.ended {
                return Ok(false);
            }
            match self.stream.next().await {
                Some(Ok(b)) => self.buf.extend_from_slice(&b),
                Some(Err(e)) => return Err(format!("reading a fragment archive: {e}")),
                None => self.ended = true,
            }
        }
        Ok(true)
    }

    /// The next whole fragment, `None` at a clean end of the archive.
    pub async fn next_fragment(&mut self) -> Result<Option<Bytes>, String> {
        if !self.fill(1).await? {
            return Ok(None);
        }
        if !self.fill(HEADER_LEN).await? {
            return Err("fragment archive ends inside a fragment header".into());
        }
        let size_bytes: [u8; 4] = self.buf[4..8].try_into().expect("4 bytes");
        let magic: [u8; 4] = self.buf[59..63].try_into().expect("4 bytes");
        // The header is in the writer's byte order; the magic tells which.
        let size = if magic == MAGIC_LE {
            u32::from_le_bytes(size_bytes)
        } else {
            u32::from_be_bytes(size_bytes)
        } as usize;
        let total = HEADER_LEN + size;
        if total > self.max {
            return Err(format!(
                "fragment header claims {size} payload bytes, more than the policy's fragments hold"
            ));
        }
        if !self.fill(total).await? {
            return Err("fragment archive ends inside a fragment".into());
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(k: u32, m: u32, seg: u64) -> EcPolicy {
        EcPolicy::from_params(&EcParams {
            ec_type: "liberasurecode_rs_vand".into(),
            ndata: k,
            nparity: m,
            segment_size: seg,
            duplication_factor: 1,
        })
        .unwrap()
    }

    #[test]
    fn archive_length_is_what_encoding_writes() {
        let p = policy(4, 2, 4096);
        for len in [0u64, 1, 4095, 4096, 4097, 3 * 4096 + 17] {
            let data = vec![7u8; len as usize];
            let mut archive = 0u64;
            for chunk in data.chunks(4096) {
                archive += p.codec.encode(chunk)[0].len() as u64;
            }
            assert_eq!(p.archive_length(len), archive, "len {len}");
        }
        assert_eq!(p.quorum(), 5);
        assert_eq!(p.scheme(), "liberasurecode_rs_vand 4+2");
    }

    #[test]
    fn ranges_map_to_whole_segments_and_fragments() {
        let p = policy(4, 2, 100);
        let fs = p.fragment_size;
        assert_eq!(
            p.plan(150, 250),
            SegmentPlan {
                first_segment: 1,
                segment_count: 2,
                fragment_range: (fs, 3 * fs - 1),
                skip: 50,
                take: 101
            }
        );
        let one = p.plan(0, 0);
        assert_eq!(
            (one.first_segment, one.segment_count, one.skip, one.take),
            (0, 1, 0, 1)
        );
        assert_eq!(p.segments(0), 0);
        assert_eq!(p.segments(201), 3);
        assert_eq!(p.segment_length(2, 201), 1);
        assert_eq!(p.segment_length(0, 201), 100);
    }

    #[tokio::test]
    async fn reader_cuts_archives_at_fragment_boundaries_and_refuses_truncation() {
        let p = policy(4, 2, 64);
        let data: Vec<u8> = (0..150u8).collect();
        let mut archive = Vec::new();
        let mut expected = Vec::new();
        for chunk in data.chunks(64) {
            let f = p.codec.encode(chunk).swap_remove(1);
            archive.extend_from_slice(&f);
            expected.push(f);
        }
        // Delivered in awkward pieces.
        let pieces: Vec<Result<Bytes, std::io::Error>> = archive
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let mut r = FragmentReader::new(
            Body::from_stream(futures_util::stream::iter(pieces)),
            p.fragment_size as usize,
        );
        for e in &expected {
            assert_eq!(&r.next_fragment().await.unwrap().unwrap()[..], &e[..]);
        }
        assert!(r.next_fragment().await.unwrap().is_none());

        let cut = archive[..archive.len() - 3].to_vec();
        let mut r = FragmentReader::new(Body::from(cut), p.fragment_size as usize);
        r.next_fragment().await.unwrap();
        r.next_fragment().await.unwrap();
        assert!(r.next_fragment().await.is_err());
    }
}
