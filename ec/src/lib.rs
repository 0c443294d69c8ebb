//! Ringsmith's erasure-coding codec, writing fragments byte for byte as pyeclib 1.8.0 (over
//! liberasurecode and ISA-L) writes them, so Swift and Ringsmith nodes can read each other's
//! erasure-coded objects.
//!
//! # How it works
//!
//! Swift cuts an object into segments (`ec_object_segment_size`, 1 MiB by default) and
//! encodes each segment on its own into `k` data and `m` parity fragments; fragment `i` of
//! every segment, concatenated, is the fragment archive stored on the `i`-th node.
//!
//! **Layout.** A segment of `n` bytes is padded with zeros to a multiple of `k * w/8`
//! bytes, where `w` is the word size of the backend's field (8 bits for the ISA-L
//! backends, 16 for liberasurecode's own `liberasurecode_rs_vand`). The padded segment is
//! split into `k` equal blocks: data fragment `i` carries block `i`. Each fragment is an
//! 80-byte header (see [`FragmentHeader`]) followed by its block, so every fragment of a
//! segment has the same length. A 0-byte segment gives `k + m` bare headers.
//!
//! **Parity.** The codes are systematic Reed-Solomon codes: a `(k + m) x k` generator
//! matrix `G` over a Galois field, identity on top. Parity fragment `r` is, word by word,
//! the field sum of `G[k + r][j] * block_j`. The matrix decides the parity bytes, so it is
//! built exactly as the reference backend builds it:
//! - `isa_l_rs_vand`: ISA-L's `gf_gen_rs_matrix` over GF(2^8) (polynomial 0x11D): parity
//!   row `r` is `1, g, g^2, …` with `g = 2^r`. It is not an MDS code for every shape; some
//!   sets of `k` fragments are singular, which is why Swift wants `m >= 5` deprecated.
//! - `isa_l_rs_cauchy`: ISA-L's `gf_gen_cauchy1_matrix`, entry `(i, j)` = `1 / (i ^ j)`,
//!   MDS for every shape.
//! - `liberasurecode_rs_vand`: GF(2^16) (polynomial 0x1100B); a Vandermonde matrix turned
//!   systematic by column operations, the first parity row scaled to all ones. Blocks are
//!   read as little-endian 16-bit words.
//!
//! **Decoding** keeps the first `k` distinct fragments in index order, takes their rows
//! of `G`, and inverts that `k x k` matrix; row `i` of the inverse rebuilds data block `i`
//! from the kept fragments. A missing parity fragment is its `G` row times the rebuilt
//! data, folded into one coefficient row over the kept fragments. A linear code has only
//! one answer, so any correct inverse gives liberasurecode's bytes; only encoding needs
//! the exact matrix, and the golden tests compare both against pyeclib.
//!
//! **Speed.** Every product is a sum of "multiply a slice by a constant" terms, done
//! without per-byte branches by one of three kernels, the best the CPU has
//! ([`Kernel`]):
//! - GFNI (with AVX-512BW): multiplication by a constant is linear over GF(2), so it is an
//!   8x8 bit matrix that `gf2p8affineqb` applies to 64 bytes at once. GF(2^16) words take
//!   four such matrices (low/high byte to low/high byte) on the bytes and on the bytes
//!   swapped within each word, merged by a lane mask.
//! - AVX2: split-nibble tables, `c * b = T_lo[b & 15] ^ T_hi[b >> 4]`, two 16-byte tables
//!   that `vpshufb` looks up 32 bytes at a time (eight tables for a GF(2^16) word).
//! - portable: a 256-entry table per coefficient (two for GF(2^16)).
//!
//! Sources are processed in 4 KiB chunks that stay in cache while every output row is
//! computed; the sums live in registers (up to four outputs per source load with GFNI), so
//! each output byte is stored once.
//!
//! **Trust.** [`Codec::decode`] and [`Codec::reconstruct`] check every header (magic,
//! metadata CRC, backend, index, sizes that agree with each other and with the layout,
//! the payload CRC when one was written) and refuse rather than return wrong bytes.

mod archive;
mod gf16;
mod gf8;
mod header;
mod segment;

pub use archive::ArchiveChecker;
pub use gf8::Kernel;
pub use header::{
    FragmentHeader, CHKSUM_CRC32, CHKSUM_MD5, CHKSUM_NONE, HEADER_LEN, LIBEC_VERSION,
};
pub use segment::SegmentInfo;

/// The `ec_type`s implemented, in pyeclib's spelling.
pub const EC_TYPES: [&str; 3] = ["liberasurecode_rs_vand", "isa_l_rs_vand", "isa_l_rs_cauchy"];

/// liberasurecode's `EC_MAX_FRAGMENTS`: at most this many fragments (k + m).
pub const MAX_FRAGMENTS: usize = 256;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unsupported ec_type {0:?}; supported: liberasurecode_rs_vand, isa_l_rs_vand, isa_l_rs_cauchy")]
    UnknownEcType(String),
    #[error("invalid parameters for {ec_type}: {reason}")]
    InvalidParams { ec_type: String, reason: String },
    #[error("not enough fragments to decode: {have} distinct, need {need}")]
    NotEnoughFragments { have: usize, need: usize },
    #[error("bad fragment header: {0}")]
    BadHeader(String),
    #[error("fragments do not belong together: {0}")]
    Mismatch(String),
    #[error("fragments {0:?} cannot be decoded: their rows of the generator matrix are singular")]
    Singular(Vec<u32>),
    #[error("fragment index {index} is out of range for {total} fragments")]
    BadIndex { index: usize, total: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EcType {
    LiberasurecodeRsVand,
    IsaLRsVand,
    IsaLRsCauchy,
}

impl EcType {
    pub fn parse(name: &str) -> Result<EcType, Error> {
        match name {
            "liberasurecode_rs_vand" => Ok(EcType::LiberasurecodeRsVand),
            "isa_l_rs_vand" => Ok(EcType::IsaLRsVand),
            "isa_l_rs_cauchy" => Ok(EcType::IsaLRsCauchy),
            other => Err(Error::UnknownEcType(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EcType::LiberasurecodeRsVand => "liberasurecode_rs_vand",
            EcType::IsaLRsVand => "isa_l_rs_vand",
            EcType::IsaLRsCauchy => "isa_l_rs_cauchy",
        }
    }

    /// liberasurecode's `ec_backend_id_t`, written into every header.
    pub fn backend_id(self) -> u8 {
        match self {
            EcType::IsaLRsVand => 4,
            EcType::LiberasurecodeRsVand => 6,
            EcType::IsaLRsCauchy => 7,
        }
    }

    /// The backend version liberasurecode writes, and requires exactly of a fragment.
    pub fn backend_version(self) -> u32 {
        match self {
            EcType::LiberasurecodeRsVand => 0x0001_0000, // 1.0.0
            EcType::IsaLRsVand => 0x0002_0d00,           // 2.13.0
            EcType::IsaLRsCauchy => 0x0002_0e01,         // 2.14.1
        }
    }

    /// Bytes per field word: segments are padded to a multiple of `k` words.
    pub fn word_bytes(self) -> usize {
        match self {
            EcType::LiberasurecodeRsVand => 2,
            EcType::IsaLRsVand | EcType::IsaLRsCauchy => 1,
        }
    }
}

/// The generator matrix, `(k + m)` rows of `k`, in its field.
#[derive(Clone, Debug)]
enum Matrix {
    Gf8(Vec<u8>),
    Gf16(Vec<u16>),
}

/// One erasure code: a backend and its `k` data and `m` parity fragments.
#[derive(Clone, Debug)]
pub struct Codec {
    ec_type: EcType,
    k: usize,
    m: usize,
    matrix: Matrix,
    kernel: Kernel,
}

impl Codec {
    /// A codec for `ec_type` (pyeclib's name) with `k` data and `m` parity fragments.
    /// Refuses what pyeclib refuses: unknown types, `k` or `m` of 0, and more than
    /// [`MAX_FRAGMENTS`] fragments in all.
    pub fn new(ec_type: &str, k: usize, m: usize) -> Result<Codec, Error> {
        let ty = EcType::parse(ec_type)?;
        let invalid = |reason: String| Error::InvalidParams {
            ec_type: ec_type.to_string(),
            reason,
        };
        if k == 0 {
            return Err(invalid(
                "the number of data fragments (k) must be at least 1".into(),
            ));
        }
        if m == 0 {
            return Err(invalid(
                "the number of parity fragments (m) must be at least 1".into(),
            ));
        }
        if k + m > MAX_FRAGMENTS {
            return Err(invalid(format!(
                "k + m = {} exceeds the {MAX_FRAGMENTS} fragments liberasurecode allows",
                k + m
            )));
        }
        let matrix = match ty {
            EcType::IsaLRsVand => Matrix::Gf8(gf8::rs_vand_matrix(k, m)),
            EcType::IsaLRsCauchy => Matrix::Gf8(gf8::cauchy1_matrix(k, m)),
            EcType::LiberasurecodeRsVand => Matrix::Gf16(gf16::rs_vand_matrix(k, m)),
        };
        Ok(Codec {
            ec_type: ty,
            k,
            m,
            matrix,
            kernel: Kernel::best(),
        })
    }

    /// The same codec computing with `kernel` instead of the best one for this CPU (for
    /// tests and benchmarks of the fallbacks). A kernel the CPU lacks is ignored.
    pub fn with_kernel(mut self, kernel: Kernel) -> Codec {
        if Kernel::available().contains(&kernel) {
            self.kernel = kernel;
        }
        self
    }

    /// The slice kernel in use.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    pub fn ec_type(&self) -> EcType {
        self.ec_type
    }
    pub fn k(&self) -> usize {
        self.k
    }
    pub fn m(&self) -> usize {
        self.m
    }

    /// Payload bytes of each fragment of an `n`-byte segment: `n` rounded up to a whole
    /// number of `k` words, divided by `k`.
    pub fn block_size(&self, n: usize) -> usize {
        let align = self.k * self.ec_type.word_bytes();
        n.div_ceil(align) * align / self.k
    }

    /// The length of each fragment (header included) of an `n`-byte segment.
    pub fn fragment_size(&self, n: usize) -> usize {
        HEADER_LEN + self.block_size(n)
    }

    /// liberasurecode's minimum encode size: a segment shorter than this is padded anyway.
    pub fn min_segment_size(&self) -> usize {
        self.k * self.ec_type.word_bytes()
    }

    /// pyeclib's `get_segment_info(data_len, segment_size)`.
    pub fn segment_info(&self, data_len: u64, segment_size: u64) -> SegmentInfo {
        segment::segment_info(self, data_len, segment_size)
    }

    fn header(&self, index: usize, block: usize, orig: usize) -> [u8; HEADER_LEN] {
        FragmentHeader {
            index: index as u32,
            size: block as u32,
            backend_metadata_size: 0,
            orig_data_size: orig as u64,
            chksum_type: CHKSUM_NONE,
            chksum: [0; 8],
            chksum_mismatch: 0,
            backend_id: self.ec_type.backend_id(),
            backend_version: self.ec_type.backend_version(),
            libec_version: LIBEC_VERSION,
            metadata_chksum: 0,
        }
        .to_bytes()
    }

    /// Encodes one segment into `k + m` fragments, data first, headers included.
    ///
    /// Segments are Swift's `ec_object_segment_size` (1 MiB by default); as in
    /// liberasurecode, header sizes are 32-bit, so a fragment payload must stay under
    /// 4 GiB.
    pub fn encode(&self, data: &[u8]) -> Vec<Vec<u8>> {
        let mut frags = Vec::new();
        self.encode_into(data, &mut frags);
        frags
    }

    /// [`Codec::encode`] into `frags`, reusing its vectors' memory: a streaming encoder
    /// that keeps one set of buffers avoids an allocation (and, with glibc, page faults
    /// on freshly trimmed heap) per segment.
    pub fn encode_into(&self, data: &[u8], frags: &mut Vec<Vec<u8>>) {
        let block = self.block_size(data.len());
        assert!(
            u32::try_from(block).is_ok(),
            "segment of {} bytes is too large for a fragment header",
            data.len()
        );
        frags.resize_with(self.k + self.m, Vec::new);
        for (i, frag) in frags.iter_mut().enumerate() {
            frag.clear();
            // One allocation of the final size: growing from a small first allocation
            // would realloc every fragment on every call.
            frag.reserve_exact(HEADER_LEN + block);
            frag.extend_from_slice(&self.header(i, block, data.len()));
            if i < self.k {
                let from = (i * block).min(data.len());
                let to = ((i + 1) * block).min(data.len());
                frag.extend_from_slice(&data[from..to]);
            }
            // Zero padding for the last data blocks; parity is overwritten below.
            frag.resize(HEADER_LEN + block, 0);
        }
        let (data_frags, parity_frags) = frags.split_at_mut(self.k);
        let srcs: Vec<&[u8]> = data_frags.iter().map(|f| &f[HEADER_LEN..]).collect();
        let mut outs: Vec<&mut [u8]> = parity_frags
            .iter_mut()
            .map(|f| &mut f[HEADER_LEN..])
            .collect();
        self.dot_rows(&self.parity_rows(), &srcs, &mut outs);
    }

    /// The parity rows of the generator matrix.
    fn parity_rows(&self) -> Rows {
        match &self.matrix {
            Matrix::Gf8(a) => Rows::Gf8(a[self.k * self.k..].to_vec()),
            Matrix::Gf16(a) => Rows::Gf16(a[self.k * self.k..].to_vec()),
        }
    }

    fn dot_rows(&self, rows: &Rows, srcs: &[&[u8]], outs: &mut [&mut [u8]]) {
        match rows {
            Rows::Gf8(c) => gf8::dot_rows_with(self.kernel, c, srcs, outs),
            Rows::Gf16(c) => gf16::dot_rows_with(self.kernel, c, srcs, outs),
        }
    }

    /// Checks every fragment and keeps the first `k` distinct indexes in index order.
    fn select<'a, F: AsRef<[u8]>>(&self, fragments: &'a [F]) -> Result<Selected<'a>, Error> {
        let n = self.k + self.m;
        let mut by_index: Vec<Option<&'a [u8]>> = vec![None; n];
        let mut first: Option<FragmentHeader> = None;
        for (pos, frag) in fragments.iter().enumerate() {
            let frag = frag.as_ref();
            let h = FragmentHeader::parse(frag)
                .map_err(|e| Error::BadHeader(format!("fragment #{pos}: {}", strip(&e))))?;
            self.check_header(&h, frag, pos)?;
            match &first {
                None => first = Some(h.clone()),
                Some(f) if f.orig_data_size != h.orig_data_size || f.size != h.size => {
                    return Err(Error::Mismatch(format!(
                        "fragment #{pos} (index {}) is {} bytes of a {}-byte segment, \
                         fragment #0 (index {}) {} bytes of a {}-byte segment",
                        h.index, h.size, h.orig_data_size, f.index, f.size, f.orig_data_size
                    )));
                }
                Some(_) => {}
            }
            by_index[h.index as usize].get_or_insert(&frag[HEADER_LEN..]);
        }
        let have = by_index.iter().filter(|f| f.is_some()).count();
        if have < self.k {
            return Err(Error::NotEnoughFragments { have, need: self.k });
        }
        let first = first.expect("k >= 1 fragments were checked");
        let kept: Vec<(usize, &'a [u8])> = by_index
            .iter()
            .enumerate()
            .filter_map(|(i, f)| f.map(|f| (i, f)))
            .take(self.k)
            .collect();
        Ok(Selected {
            orig: first.orig_data_size as usize,
            block: first.size as usize,
            kept,
            by_index,
        })
    }

    fn check_header(&self, h: &FragmentHeader, frag: &[u8], pos: usize) -> Result<(), Error> {
        let bad = |reason: String| Err(Error::BadHeader(format!("fragment #{pos}: {reason}")));
        if h.backend_id != self.ec_type.backend_id()
            || h.backend_version != self.ec_type.backend_version()
        {
            return bad(format!(
                "backend id {} version {:#x}, this codec is {} (id {}, version {:#x})",
                h.backend_id,
                h.backend_version,
                self.ec_type.name(),
                self.ec_type.backend_id(),
                self.ec_type.backend_version()
            ));
        }
        if h.index as usize >= self.k + self.m {
            return bad(format!(
                "index {} is not below k + m = {}",
                h.index,
                self.k + self.m
            ));
        }
        if h.backend_metadata_size != 0 {
            return bad(format!(
                "backend metadata size {} is not 0",
                h.backend_metadata_size
            ));
        }
        if HEADER_LEN + h.size as usize != frag.len() {
            return bad(format!(
                "header says {} payload bytes, fragment has {}",
                h.size,
                frag.len() - HEADER_LEN
            ));
        }
        let Ok(orig) = usize::try_from(h.orig_data_size) else {
            return bad(format!("segment size {} is too large", h.orig_data_size));
        };
        if orig > h.size as usize * self.k || self.block_size(orig) != h.size as usize {
            return bad(format!(
                "payload of {} bytes does not fit a {}-byte segment split {} ways",
                h.size, h.orig_data_size, self.k
            ));
        }
        if h.chksum_type == CHKSUM_CRC32 && crc32fast::hash(&frag[HEADER_LEN..]) != h.chksum[0] {
            return bad("payload CRC-32 does not match the header".into());
        }
        Ok(())
    }

    /// Decodes one segment from any `k` (or more) of its fragments.
    pub fn decode<F: AsRef<[u8]>>(&self, fragments: &[F]) -> Result<Vec<u8>, Error> {
        let sel = self.select(fragments)?;
        let mut out = vec![0u8; sel.block * self.k];
        let mut missing = Vec::new();
        let mut rebuilt: Vec<&mut [u8]> = Vec::new();
        if sel.block > 0 {
            for (i, block) in out.chunks_mut(sel.block).enumerate() {
                match sel.by_index[i] {
                    Some(b) => block.copy_from_slice(b),
                    None => {
                        missing.push(i);
                        rebuilt.push(block);
                    }
                }
            }
        }
        if !missing.is_empty() {
            // The missing data blocks are written in place from the kept fragments.
            let inverse = self.inverse(&sel)?;
            let rows = inverse.select_rows(&missing, self.k);
            let srcs: Vec<&[u8]> = sel.kept.iter().map(|(_, f)| *f).collect();
            self.dot_rows(&rows, &srcs, &mut rebuilt);
        }
        out.truncate(sel.orig);
        Ok(out)
    }

    /// Rebuilds fragment `index` (header included) from any `k` others of the same
    /// segment: the bytes [`Codec::encode`] made for it.
    pub fn reconstruct<F: AsRef<[u8]>>(
        &self,
        fragments: &[F],
        index: usize,
    ) -> Result<Vec<u8>, Error> {
        let total = self.k + self.m;
        if index >= total {
            return Err(Error::BadIndex { index, total });
        }
        let sel = self.select(fragments)?;
        let mut frag = Vec::with_capacity(HEADER_LEN + sel.block);
        frag.extend_from_slice(&self.header(index, sel.block, sel.orig));
        if let Some(have) = sel.by_index[index] {
            frag.extend_from_slice(have);
            return Ok(frag);
        }
        // Data block d = inv[d] . kept; fragment `index` = G[index] . data, so its row over
        // the kept fragments is G[index] x inv.
        let inverse = self.inverse(&sel)?;
        let row = match (&self.matrix, &inverse) {
            (Matrix::Gf8(g), Rows::Gf8(inv)) => Rows::Gf8(combine(
                &g[index * self.k..(index + 1) * self.k],
                inv,
                self.k,
                gf8::mul,
            )),
            (Matrix::Gf16(g), Rows::Gf16(inv)) => Rows::Gf16(combine(
                &g[index * self.k..(index + 1) * self.k],
                inv,
                self.k,
                gf16::mul,
            )),
            _ => unreachable!("the inverse is in the matrix's field"),
        };
        frag.resize(HEADER_LEN + sel.block, 0);
        let srcs: Vec<&[u8]> = sel.kept.iter().map(|(_, f)| *f).collect();
        self.dot_rows(&row, &srcs, &mut [&mut frag[HEADER_LEN..]]);
        Ok(frag)
    }

    /// The inverse of the kept fragments' rows of the generator matrix.
    fn inverse(&self, sel: &Selected) -> Result<Rows, Error> {
        let k = self.k;
        let singular = || Error::Singular(sel.kept.iter().map(|(i, _)| *i as u32).collect());
        match &self.matrix {
            Matrix::Gf8(g) => {
                let sub: Vec<u8> = sel
                    .kept
                    .iter()
                    .flat_map(|(i, _)| g[i * k..(i + 1) * k].iter().copied())
                    .collect();
                gf8::invert(&sub, k).map(Rows::Gf8).ok_or_else(singular)
            }
            Matrix::Gf16(g) => {
                let sub: Vec<u16> = sel
                    .kept
                    .iter()
                    .flat_map(|(i, _)| g[i * k..(i + 1) * k].iter().copied())
                    .collect();
                gf16::invert(&sub, k).map(Rows::Gf16).ok_or_else(singular)
            }
        }
    }
}

/// Row-major coefficient rows in the codec's field.
enum Rows {
    Gf8(Vec<u8>),
    Gf16(Vec<u16>),
}

impl Rows {
    fn select_rows(&self, which: &[usize], width: usize) -> Rows {
        match self {
            Rows::Gf8(a) => Rows::Gf8(
                which
                    .iter()
                    .flat_map(|&r| a[r * width..(r + 1) * width].iter().copied())
                    .collect(),
            ),
            Rows::Gf16(a) => Rows::Gf16(
                which
                    .iter()
                    .flat_map(|&r| a[r * width..(r + 1) * width].iter().copied())
                    .collect(),
            ),
        }
    }
}

/// `row x matrix` for a `k`-wide row and a `k x k` matrix.
fn combine<T: Copy + Default + std::ops::BitXorAssign>(
    row: &[T],
    matrix: &[T],
    k: usize,
    mul: fn(T, T) -> T,
) -> Vec<T> {
    let mut out = vec![T::default(); k];
    for (d, &g) in row.iter().enumerate() {
        for (j, o) in out.iter_mut().enumerate() {
            *o ^= mul(g, matrix[d * k + j]);
        }
    }
    out
}

struct Selected<'a> {
    orig: usize,
    block: usize,
    /// The first `k` distinct fragments in index order: (index, payload).
    kept: Vec<(usize, &'a [u8])>,
    /// Every fragment given, by index.
    by_index: Vec<Option<&'a [u8]>>,
}

/// An error's message without its variant's prefix, to nest it in another.
fn strip(e: &Error) -> String {
    match e {
        Error::BadHeader(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
