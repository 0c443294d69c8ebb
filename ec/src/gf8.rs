//! GF(2^8) with ISA-L's field polynomial x^8+x^4+x^3+x^2+1 (0x11D) and generator 2, and
//! the slice kernels the ISA-L backends need.
//!
//! Multiplying a whole slice by a constant `c` uses the split-nibble trick: `c * b =
//! c * (b & 0x0f) ^ c * (b & 0xf0)`, so two 16-entry tables per coefficient answer every
//! byte. Those tables fit one SIMD register each, and a byte shuffle (`pshufb`) looks up 32
//! bytes at a time; the portable fallback uses one 256-entry table per coefficient. Neither
//! branches per byte.

const POLY: u16 = 0x11d;

/// `EXP[i] = 2^i`, doubled in length so `EXP[log a + log b]` needs no reduction.
static EXP: [u8; 512] = exp_table();
/// `LOG[a]` for a != 0; `LOG[0]` is unused.
static LOG: [u8; 256] = log_table();

const fn exp_table() -> [u8; 512] {
    let mut t = [0u8; 512];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        t[i] = x as u8;
        t[i + 255] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= POLY;
        }
        i += 1;
    }
    t
}

const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        t[exp[i] as usize] = i as u8;
        i += 1;
    }
    t
}

pub fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    EXP[LOG[a as usize] as usize + LOG[b as usize] as usize]
}

/// The multiplicative inverse; 0 for 0, as ISA-L's `gf_inv`.
pub fn inv(a: u8) -> u8 {
    if a == 0 {
        return 0;
    }
    EXP[255 - LOG[a as usize] as usize]
}

/// ISA-L's `gf_gen_rs_matrix`: identity on top, parity row `r` = `(2^r)^j` for column `j`.
pub fn rs_vand_matrix(k: usize, m: usize) -> Vec<u8> {
    let mut a = identity_on_top(k, m);
    let mut gen = 1u8;
    for row in k..k + m {
        let mut p = 1u8;
        for j in 0..k {
            a[row * k + j] = p;
            p = mul(p, gen);
        }
        gen = mul(gen, 2);
    }
    a
}

/// ISA-L's `gf_gen_cauchy1_matrix`: identity on top, row `i` column `j` = `1 / (i ^ j)`.
pub fn cauchy1_matrix(k: usize, m: usize) -> Vec<u8> {
    let mut a = identity_on_top(k, m);
    for row in k..k + m {
        for j in 0..k {
            // row >= k > j, so row ^ j != 0; both are < 256 as the codec checks k + m.
            a[row * k + j] = inv((row ^ j) as u8);
        }
    }
    a
}

fn identity_on_top(k: usize, m: usize) -> Vec<u8> {
    let mut a = vec![0u8; k * (k + m)];
    for i in 0..k {
        a[i * k + i] = 1;
    }
    a
}

/// The inverse of the `n` x `n` row-major matrix, or `None` when it is singular.
pub fn invert(matrix: &[u8], n: usize) -> Option<Vec<u8>> {
    let mut a = matrix.to_vec();
    let mut out = vec![0u8; n * n];
    for i in 0..n {
        out[i * n + i] = 1;
    }
    for col in 0..n {
        let pivot = (col..n).find(|&r| a[r * n + col] != 0)?;
        if pivot != col {
            for j in 0..n {
                a.swap(pivot * n + j, col * n + j);
                out.swap(pivot * n + j, col * n + j);
            }
        }
        let scale = inv(a[col * n + col]);
        for j in 0..n {
            a[col * n + j] = mul(a[col * n + j], scale);
            out[col * n + j] = mul(out[col * n + j], scale);
        }
        for r in 0..n {
            let f = a[r * n + col];
            if r == col || f == 0 {
                continue;
            }
            for j in 0..n {
                a[r * n + j] ^= mul(f, a[col * n + j]);
                out[r * n + j] ^= mul(f, out[col * n + j]);
            }
        }
    }
    Some(out)
}

/// Bytes of each source processed per pass, so the sources of one pass stay in L1/L2
/// while every output row is computed from them.
const CHUNK: usize = 4096;

/// The slice kernels, best first; [`Kernel::best`] picks one for this CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// AVX-512BW with GFNI: one affine transform multiplies 64 bytes.
    Gfni,
    /// AVX2: split-nibble tables through `vpshufb`, 32 bytes at a time.
    Avx2,
    /// Any CPU: a 256-entry table per coefficient.
    Portable,
}

impl Kernel {
    pub fn best() -> Kernel {
        Kernel::available()[0]
    }

    pub fn name(self) -> &'static str {
        match self {
            Kernel::Gfni => "gfni",
            Kernel::Avx2 => "avx2",
            Kernel::Portable => "portable",
        }
    }

    /// The kernel called `name` ([`Kernel::name`]), if any.
    pub fn parse(name: &str) -> Option<Kernel> {
        [Kernel::Gfni, Kernel::Avx2, Kernel::Portable]
            .into_iter()
            .find(|k| k.name() == name)
    }

    /// The kernels this CPU can run, best first.
    pub fn available() -> Vec<Kernel> {
        let mut v = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if has_gfni() {
                v.push(Kernel::Gfni);
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                v.push(Kernel::Avx2);
            }
        }
        v.push(Kernel::Portable);
        v
    }
}

/// `outs[r] = sum_j coefs[r * srcs.len() + j] * srcs[j]`, byte-wise in GF(2^8).
/// Every source and output has the same length.
pub fn dot_rows_with(kernel: Kernel, coefs: &[u8], srcs: &[&[u8]], outs: &mut [&mut [u8]]) {
    let len = outs.first().map_or(0, |o| o.len());
    let nsrc = srcs.len();
    debug_assert_eq!(coefs.len(), nsrc * outs.len());
    debug_assert!(srcs.iter().all(|s| s.len() == len));
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Gfni if has_gfni() => {
            let matrices: Vec<u64> = coefs.iter().map(|&c| affine_matrix(c)).collect();
            let mut first_row = 0;
            // Up to four outputs per pass share each source load.
            for group in outs.chunks_mut(4) {
                let rows = &matrices[first_row * nsrc..(first_row + group.len()) * nsrc];
                for start in (0..len).step_by(CHUNK) {
                    let end = (start + CHUNK).min(len);
                    // SAFETY: AVX-512BW and GFNI were detected at run time by has_gfni.
                    unsafe { x86::dot_gfni(rows, srcs, start, end, group) };
                }
                first_row += group.len();
            }
        }
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 if std::arch::is_x86_feature_detected!("avx2") => {
            let tables: Vec<[u8; 32]> = coefs.iter().map(|&c| nibble_tables(c)).collect();
            for start in (0..len).step_by(CHUNK) {
                let end = (start + CHUNK).min(len);
                for (r, out) in outs.iter_mut().enumerate() {
                    let row = &tables[r * nsrc..(r + 1) * nsrc];
                    // SAFETY: AVX2 was detected at run time by the guard.
                    unsafe { x86::dot_avx2(row, srcs, start, end, out) };
                }
            }
        }
        _ => {
            let tables: Vec<[u8; 256]> = coefs.iter().map(|&c| full_table(c)).collect();
            for start in (0..len).step_by(CHUNK) {
                let end = (start + CHUNK).min(len);
                for (r, out) in outs.iter_mut().enumerate() {
                    let dst = &mut out[start..end];
                    dst.fill(0);
                    for (j, src) in srcs.iter().enumerate() {
                        let t = &tables[r * nsrc + j];
                        for (d, s) in dst.iter_mut().zip(&src[start..end]) {
                            *d ^= t[*s as usize];
                        }
                    }
                }
            }
        }
    }
}

/// `c * x` for every byte `x`.
fn full_table(c: u8) -> [u8; 256] {
    let mut t = [0u8; 256];
    for (x, v) in t.iter_mut().enumerate() {
        *v = mul(c, x as u8);
    }
    t
}

/// Multiplication by `c` as the 8x8 bit matrix of GFNI's `gf2p8affineqb`.
fn affine_matrix(c: u8) -> u64 {
    affine_from_columns(|j| mul(c, 1 << j))
}

/// The `gf2p8affineqb` matrix of the GF(2)-linear byte map sending bit `j` to
/// `column(j)`: byte `7 - i` of the result is the row giving output bit `i`.
pub(crate) fn affine_from_columns(column: impl Fn(u32) -> u8) -> u64 {
    let mut q = 0u64;
    for i in 0..8 {
        let mut row = 0u8;
        for j in 0..8 {
            row |= ((column(j) >> i) & 1) << j;
        }
        q |= u64::from(row) << (8 * (7 - i));
    }
    q
}

/// What `gf2p8affineqb` does to one byte (for the tails shorter than a register).
pub(crate) fn apply_affine(q: u64, b: u8) -> u8 {
    let mut out = 0u8;
    for i in 0..8 {
        let row = (q >> (8 * (7 - i))) as u8;
        out |= (((row & b).count_ones() & 1) as u8) << i;
    }
    out
}

/// Does this CPU have AVX-512BW and GFNI?
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_gfni() -> bool {
    std::arch::is_x86_feature_detected!("gfni")
        && std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
}

/// `c * n` for the 16 low nibbles `n`, then `c * (n << 4)` for the 16 high nibbles.
fn nibble_tables(c: u8) -> [u8; 32] {
    let mut t = [0u8; 32];
    for n in 0..16u8 {
        t[n as usize] = mul(c, n);
        t[16 + n as usize] = mul(c, n << 4);
    }
    t
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `outs[r][start..end] = sum_j c[r][j] * srcs[j][start..end]` for up to four outputs,
    /// 64 bytes per step: one GFNI affine transform per coefficient multiplies 64 bytes,
    /// each source vector is loaded once for all outputs, and the sums stay in registers.
    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    pub(super) unsafe fn dot_gfni(
        matrices: &[u64],
        srcs: &[&[u8]],
        start: usize,
        end: usize,
        outs: &mut [&mut [u8]],
    ) {
        match outs.len() {
            1 => dot_gfni_n::<1>(matrices, srcs, start, end, outs),
            2 => dot_gfni_n::<2>(matrices, srcs, start, end, outs),
            3 => dot_gfni_n::<3>(matrices, srcs, start, end, outs),
            _ => dot_gfni_n::<4>(matrices, srcs, start, end, outs),
        }
    }

    #[target_feature(enable = "avx512f,avx512bw,gfni")]
    fn dot_gfni_n<const N: usize>(
        matrices: &[u64],
        srcs: &[&[u8]],
        start: usize,
        end: usize,
        outs: &mut [&mut [u8]],
    ) {
        let nsrc = srcs.len();
        let wide: Vec<__m512i> = matrices
            .iter()
            .map(|&q| _mm512_set1_epi64(q as i64))
            .collect();
        let mut i = start;
        while i + 64 <= end {
            let mut acc = [_mm512_setzero_si512(); N];
            for (j, src) in srcs.iter().enumerate() {
                // SAFETY: i + 64 <= end <= src.len().
                let s = unsafe { _mm512_loadu_si512(src.as_ptr().add(i).cast()) };
                for (r, a) in acc.iter_mut().enumerate() {
                    let p = _mm512_gf2p8affine_epi64_epi8::<0>(s, wide[r * nsrc + j]);
                    *a = _mm512_xor_si512(*a, p);
                }
            }
            for (out, a) in outs.iter_mut().zip(acc) {
                // SAFETY: i + 64 <= end <= out.len().
                unsafe { _mm512_storeu_si512(out.as_mut_ptr().add(i).cast(), a) };
            }
            i += 64;
        }
        // The tail shorter than one register, bit by bit through the same matrices.
        for x in i..end {
            for (r, out) in outs.iter_mut().enumerate() {
                let mut acc = 0u8;
                for (j, src) in srcs.iter().enumerate() {
                    acc ^= super::apply_affine(matrices[r * nsrc + j], src[x]);
                }
                out[x] = acc;
            }
        }
    }

    /// `out[start..end] = sum_j row[j] * srcs[j][start..end]`, 32 bytes per step, the sum
    /// held in a register so each output byte is stored once.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn dot_avx2(
        row: &[[u8; 32]],
        srcs: &[&[u8]],
        start: usize,
        end: usize,
        out: &mut [u8],
    ) {
        let mask = _mm256_set1_epi8(0x0f);
        let wide: Vec<(__m256i, __m256i)> = row
            .iter()
            .map(|t| {
                // SAFETY: each table is 32 bytes: two 16-byte loads in bounds.
                let lo = unsafe { _mm_loadu_si128(t.as_ptr().cast()) };
                let hi = unsafe { _mm_loadu_si128(t.as_ptr().add(16).cast()) };
                (
                    _mm256_broadcastsi128_si256(lo),
                    _mm256_broadcastsi128_si256(hi),
                )
            })
            .collect();
        let mut i = start;
        while i + 32 <= end {
            let mut acc = _mm256_setzero_si256();
            for (src, &(lo, hi)) in srcs.iter().zip(&wide) {
                // SAFETY: i + 32 <= end <= src.len().
                let s = unsafe { _mm256_loadu_si256(src.as_ptr().add(i).cast()) };
                let l = _mm256_and_si256(s, mask);
                let h = _mm256_and_si256(_mm256_srli_epi64(s, 4), mask);
                let p = _mm256_xor_si256(_mm256_shuffle_epi8(lo, l), _mm256_shuffle_epi8(hi, h));
                acc = _mm256_xor_si256(acc, p);
            }
            // SAFETY: i + 32 <= end <= out.len().
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), acc) };
            i += 32;
        }
        // The tail shorter than one register.
        for x in i..end {
            let mut acc = 0u8;
            for (src, t) in srcs.iter().zip(row) {
                let b = src[x];
                acc ^= t[(b & 0x0f) as usize] ^ t[16 + (b >> 4) as usize];
            }
            out[x] = acc;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_axioms() {
        for a in 1..=255u8 {
            assert_eq!(mul(a, inv(a)), 1, "a={a}");
            assert_eq!(mul(a, 1), a);
            assert_eq!(mul(a, 0), 0);
        }
        // 2^8 = x^4+x^3+x^2+1 = 0x1d under 0x11D.
        assert_eq!(mul(0x80, 2), 0x1d);
    }

    #[test]
    fn affine_matrices_multiply() {
        for c in 0..=255u8 {
            let q = affine_matrix(c);
            for b in 0..=255u8 {
                assert_eq!(apply_affine(q, b), mul(c, b), "c={c} b={b}");
            }
        }
    }

    #[test]
    fn inversion_round_trips() {
        let k = 6;
        let a = cauchy1_matrix(k, 3);
        // Rows 1..=6 (one data row dropped, one parity row added) are invertible.
        let sub: Vec<u8> = a[k..k * (k + 1)].to_vec();
        let invm = invert(&sub, k).expect("cauchy submatrix invertible");
        for i in 0..k {
            for j in 0..k {
                let mut s = 0;
                for t in 0..k {
                    s ^= mul(sub[i * k + t], invm[t * k + j]);
                }
                assert_eq!(s, u8::from(i == j));
            }
        }
        assert!(invert(&[1, 2, 1, 2], 2).is_none());
    }

    #[test]
    fn every_kernel_computes_the_field_sum() {
        for kernel in Kernel::available() {
            kernel_computes_the_field_sum(kernel);
        }
    }

    fn kernel_computes_the_field_sum(kernel: Kernel) {
        let srcs: Vec<Vec<u8>> = (0..5u8)
            .map(|j| {
                (0..1000u32)
                    .map(|i| (i * 31 + j as u32 * 7) as u8)
                    .collect()
            })
            .collect();
        let src_refs: Vec<&[u8]> = srcs.iter().map(|s| s.as_slice()).collect();
        // Six outputs: one full group of four and a partial one for the GFNI kernel.
        let coefs: Vec<u8> = (0..30u8).map(|c| c.wrapping_mul(37)).collect();
        let mut out = vec![vec![0xaau8; 1000]; 6];
        let mut outs: Vec<&mut [u8]> = out.iter_mut().map(|o| o.as_mut_slice()).collect();
        dot_rows_with(kernel, &coefs, &src_refs, &mut outs);
        for r in 0..6 {
            for x in 0..1000 {
                let want = (0..5).fold(0u8, |a, j| a ^ mul(coefs[r * 5 + j], srcs[j][x]));
                assert_eq!(out[r][x], want, "{kernel:?} row {r} byte {x}");
            }
        }
    }
}
